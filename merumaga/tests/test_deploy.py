"""The files of deploy/ (docs/operations.md, Production): the systemd units pass
`systemd-analyze verify` (with their paths pointed at this checkout), the environment file names
exactly the settings of README's table, and the nginx site proxies to the port the web unit
binds."""

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def readme_settings() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Settings") :]
    table = table[: table.index("\n## ", 5)]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, re.MULTILINE))


def test_the_units_pass_systemd_analyze(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of systemd; install it (apt-get install systemd)"
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {unit.suffix for unit in units} == {".service", ".timer", ".target"}
    for unit in units:
        text = unit.read_text()
        text = text.replace("/opt/merumaga", str(ROOT))
        text = text.replace("/etc/merumaga/merumaga.env", str(DEPLOY / "merumaga.env"))
        # Whether the account exists is the server's business, not the unit's syntax.
        text = re.sub(r"^(User|Group)=merumaga$", r"\1=root", text, flags=re.MULTILINE)
        (tmp_path / unit.name).write_text(text)
    checked = subprocess.run(
        [analyze, "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
    )
    # Unknown keys and bad values are only warnings to systemd: any output is a failure here.
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr


def test_the_environment_file_names_every_setting_of_the_readme():
    text = (DEPLOY / "merumaga.env").read_text()
    # A setting's line: NAME=value, or commented out (# NAME=default, # NAME when unset).
    named = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)(?:=\S*)?$", text, re.MULTILINE))
    assert named == readme_settings()


def test_the_proxy_reaches_the_web_unit_and_keeps_metrics_inside():
    web = (DEPLOY / "systemd" / "merumaga-web.service").read_text()
    bound = re.search(r"--bind (127\.0\.0\.1:\d+)", web).group(1)
    site = (DEPLOY / "nginx" / "merumaga.conf").read_text()
    assert f"server {bound};" in site
    assert site.count("{") == site.count("}")
    metrics = site[site.index("location = /metrics") :]
    assert "deny all;" in metrics[: metrics.index("}")]
