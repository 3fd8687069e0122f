"""The workbench's labels in Chinese (default) and English."""

from __future__ import annotations

LANGS = ("zh", "en")

LABELS: dict[str, tuple[str, str]] = {
    "title": ("规划工作台", "Planners' workbench"),
    "scenarios": ("情景", "Scenarios"),
    "runs": ("运行记录", "Runs"),
    "repo": ("项目情景（只读）", "project scenarios (read-only)"),
    "ws": ("工作区情景", "workspace scenarios"),
    "open": ("打开", "open"),
    "duplicate": ("复制为新情景", "duplicate as a new scenario"),
    "edit": ("编辑", "edit"),
    "name": ("名称", "name"),
    "description": ("说明", "description"),
    "budgets": ("预算线（万元/年）", "Budget lines (万元 a year)"),
    "payer": ("支付方", "payer"),
    "program": ("项目", "program"),
    "amount": ("金额（万元）", "amount (万元)"),
    "renew": ("嘉政办发〔2024〕7号 期满后按原条款延续", "renew 嘉政办发〔2024〕7号 on the same terms after it expires"),
    "sets": ("项目参数（每行一个 programs.ID.路径=值）", "program amounts (one programs.ID.PATH=VALUE a line)"),
    "save": ("保存", "save"),
    "draws": ("抽样次数", "draws"),
    "seed": ("随机种子（空=情景设定）", "seed (empty: the scenario's)"),
    "start": ("开始运行", "start run"),
    "status": ("状态", "status"),
    "cancel": ("取消", "cancel"),
    "headline": ("要点", "Headline"),
    "chart": ("现金支出（按财年，P5–P95 区间与预算线）", "Cash by fiscal year (P5–P95 band and the budget line)"),
    "downloads": ("下载", "Downloads"),
    "workbook": ("Excel 工作簿", "Excel workbook"),
    "csv": ("CSV（zip）", "CSV (zip)"),
    "parquet": ("Parquet 文件夹（zip）", "Parquet folder (zip)"),
    "report": ("HTML 报告（zip）", "HTML report (zip)"),
    "missing": ("运行文件夹已被删除", "run folder removed"),
    "who": ("提交人", "who"),
    "when": ("时间", "when"),
    "error": ("出错", "Error"),
    "compare": ("比较两次运行的情景", "Compare two runs' scenarios"),
    "base": ("基准", "baseline"),
    "reform": ("方案", "reform"),
    "synthetic": (
        "预算线与承诺登记为示例数据（合成），非实际拨款。",
        "Budget lines and the commitment register are illustrative (synthetic), not actual appropriations.",
    ),
    "back": ("返回", "back"),
    "sweep": ("单参数扫描", "Sweep one parameter"),
    "value": ("取值", "value"),
    "worst_year": ("最高风险年", "worst year"),
    "exceed": ("超预算", "exceed"),
    "compare_note": (
        "两个情景以共同随机数重新模拟（抽样次数取两次运行中较少者）；Δ 的标准误来自配对差。",
        "Both scenarios simulated again with common random numbers (the smaller of the two runs' draws); "
        "the standard error of Δ is from the paired differences.",
    ),
    "queued": ("排队中", "queued"),
    "running": ("运行中", "running"),
    "done": ("完成", "done"),
    "failed": ("失败", "failed"),
    "cancelled": ("已取消", "cancelled"),
}


def translator(lang: str):
    """``t(key)`` in ``lang`` (the key itself when unknown)."""
    i = LANGS.index(lang) if lang in LANGS else 0
    return lambda key: LABELS.get(key, (key, key))[i]
