"""A notebook session on the baseline, cell by cell: run, compare, sweep — no folder touched.

Run it as a script (`python examples/notebook_baseline.py`) or paste the cells into Jupyter; the tests run it
with few draws (FISCAL_SIM_EXAMPLE_DRAWS).
"""

import os

import fiscal_sim as fs

DRAWS = int(os.environ.get("FISCAL_SIM_EXAMPLE_DRAWS", "2000"))

# %% 1. The baseline, simulated in memory
base = fs.load("scenarios/baseline.yaml").with_settings(draws=DRAWS)
res = fs.simulate(base)
city = res.cash("city")
print(city[["mean_cny", "p90_cny", "budget_cny", "p_exceed"]].div([1e8, 1e8, 1e8, 1]).round(3))
for line in res.headline["text"]["zh"]:
    print(line)

# %% 2. A reform with common random numbers: the major-conversion cap at 1500万元
cmp = fs.compare(base, "scenarios/cap1500.yaml").to_pandas()
city_change = cmp.query("program == 'ALL' and payer == 'city' and measure == 'cash' and period == 'horizon'")
print(
    "city, horizon change (亿元):",
    float(city_change.change_mean_cny.iloc[0]) / 1e8,
    "±",
    float(city_change.change_se_cny.iloc[0]) / 1e8,
)

# %% 3. A sweep of the same cap
table = fs.sweep(base, ["programs.jzf2017-3.major-conversion.cap=1000,2000,3000"]).to_pandas()
print(
    table.query(
        "program == 'ALL' and payer == 'city' and vintage == 'ALL' and measure == 'cash' and period == 'horizon'"
    )[["point", "mean_cny", "p95_cny"]]
)

# %% 4. One applicant, by hand
case = fs.calculate(
    "jzbf2024-7.tech-intermediary-reward", {"contract": "500万元"}, jurisdiction="海宁", date="2025-05-01"
)
print(case.total_cny, "yuan")
