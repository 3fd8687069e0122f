"""Credentials in URLs never reach a terminal, a manifest or any file fiscal_sim writes, in every form pyarrow
takes: ``KEY:SECRET@`` with ``/``, ``+``, ``=`` or percent-escapes in the secret, and credential query options."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from fiscal_sim.io.secrets import mask, mask_all

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfi=CYEXAMPLEKEY"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("s3://AK:SECRET@b/p?endpoint_override=h:1", "s3://***@b/p?endpoint_override=h:1"),
        (f"s3://AKIA:{SECRET}@bucket/p?scheme=http", "s3://***@bucket/p?scheme=http"),  # '/' in the secret
        ("s3://AKIA:a%2Fb%2Bc%3D@bucket/p", "s3://***@bucket/p"),  # percent-escaped
        ("s3://bucket/p?access_key=AKIA&secret_key=wJal/r%2Bx", "s3://bucket/p?access_key=***&secret_key=***"),
        ("s3://b/p?session_token=T&region=x", "s3://b/p?session_token=***&region=x"),
        ("gs://b/p?access_token=TOKEN&scheme=http", "gs://b/p?access_token=***&scheme=http"),
        ("abfs://account:KEY==@container/p?sas_token=sv%3D2020", "abfs://***@container/p?sas_token=***"),
        ("s3://b/p?region=x", "s3://b/p?region=x"),
        ("s3://bucket/path@2024/x", "s3://bucket/path@2024/x"),  # '@' in a key, no secret
        ("outputs/baseline", "outputs/baseline"),
    ],
)
def test_mask_hand_cases(url, shown):
    assert mask(url) == shown


def test_mask_finds_urls_inside_messages_and_command_lines():
    msg = f"--out s3://AKIA:{SECRET}@b/p: bucket b not found; and 'gs://x/y?access_token=abc'"
    assert SECRET not in mask(msg) and "abc" not in mask(msg) and mask(msg).startswith("--out s3://***@b/p")
    assert mask_all(["fiscal-sim", "run", f"--out=s3://K:{SECRET}@b/p"]) == ["fiscal-sim", "run", "--out=s3://***@b/p"]


@given(st.text(st.sampled_from("abcXYZ019/+=%-_.~!$'()*,;:"), min_size=6, max_size=40))
def test_no_secret_survives_masking(secret):
    """Any secret of URL characters (in a query value '&' would end it, as pyarrow reads it too)."""
    for url in (
        f"s3://AKIAEXAMPLE:{secret}@bucket/prefix?scheme=http",
        f"s3://bucket/prefix?secret_key={secret}&scheme=http",
    ):
        assert secret not in mask(url), url


# ---------------------------------------------------------------- end to end, on moto's S3 server
from tests.test_remote_out import BASE, ENV, HERE, cli, s3  # noqa: E402,F401  (the moto fixture)

FORMS = {
    "slash": "wJalr/K7MDENG/bPxRfiEXAMPLEKEY",
    "plus-equals": "wJalr+K7MDENG=bPxRfi",
    "escaped": "wJalr%2FK7MDENG%2BbPxRfi",
}


def _scan(root: Path, needles: list[str]) -> list[str]:
    found = []
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            found += [f"{f}: {n}" for n in needles if n.encode() in data]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("form", sorted(FORMS))
def test_no_command_shows_or_writes_a_secret(s3, tmp_path, form):  # noqa: F811 (the moto fixture)
    """Every command that takes a URL, with credentials in the user info or the query: no secret in stdout,
    stderr, a local file written, or any object in the bucket (manifests of sub-runs included)."""
    boto3 = pytest.importorskip("boto3")
    secret = FORMS[form]
    plain = secret.replace("%2F", "/").replace("%2B", "+")
    needles = sorted({secret, plain, "K7MDENG"})
    base = s3(f"sec-{form}")
    userinfo = base.replace("s3://", f"s3://testing:{secret}@")
    query = base + f"&access_key=testing&secret_key={secret}"
    outputs = []
    for url in (userinfo, query):
        for args in (
            ["run", str(BASE), "--draws", "100", "-q", "--out", url],
            ["compare", str(BASE), str(HERE / "crn_cap.yaml"), "--draws", "100", "-q", "--out", url + "x"],
            [
                "sweep",
                str(BASE),
                "--set",
                "uptake.jwf2017-4.talent-housing.growth=0,0.05",
                "--draws",
                "50",
                "-q",
                "--out",
                url + "y",
            ],
            ["export", url, "--csv", str(tmp_path / "csv" / form)],
            ["report", url],
            ["run", str(BASE), "--draws", "100", "-q", "--out", url.replace("sec-", "no-such-bucket/")],
        ):
            r = cli(*args)
            outputs.append(r.stdout + r.stderr)
            assert "Traceback" not in r.stderr, (args, r.stderr)
    leaks = [n for o in outputs for n in needles if n in o]
    assert not leaks, leaks
    assert not _scan(tmp_path, needles)
    client = boto3.client("s3", endpoint_url="http://" + base.split("endpoint_override=")[1].split("&")[0])
    for obj in client.list_objects_v2(Bucket="fiscal-sim-test").get("Contents", []):
        body = client.get_object(Bucket="fiscal-sim-test", Key=obj["Key"])["Body"].read()
        assert not [n for n in needles if n.encode() in body], obj["Key"]
