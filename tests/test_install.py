"""`make install` / `seatbox install` into a scratch root: documented tree, idempotent, valid units.

One module-wide install builds a real venv (pip install of this tree); the rest use --no-venv.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEATBOX = [str(Path(sys.executable).parent / "seatbox")]

# The tree docs/operations.md documents (paths relative to the root).
DOCUMENTED = [
    "opt/seatbox/venv/bin/seatbox",
    "opt/seatbox/share/doc/operations.md",
    "opt/seatbox/share/doc/bridge.md",
    "opt/seatbox/share/installed-files",
    "etc/seatbox",
    "etc/seatbox/profiles",
    "etc/systemd/system/seatbox.service",
    "etc/systemd/system/multi-user.target.wants/seatbox.service",
    "etc/systemd/system/seatbox-gadget.service",
    "etc/tmpfiles.d/seatbox.conf",
    "etc/sysusers.d/seatbox.conf",
    "var/lib/seatbox",
    "var/lib/seatbox/tapes",
]


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under root with mode, size, mtime and (outside the venv) content hash."""
    entries: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.startswith("usr/"):  # host units linked in by the verify test
            continue
        info = path.lstat()
        if path.is_symlink():
            entries[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            entries[rel] = ("dir", info.st_mode)
        else:
            digest = "" if "/venv/" in rel else hashlib.sha256(path.read_bytes()).hexdigest()
            entries[rel] = ("file", info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return entries


def run(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A real install (with the venv) into a scratch root, and what it printed."""
    root = tmp_path_factory.mktemp("root")
    result = run(*SEATBOX, "install", "--root", str(root))
    assert result.returncode == 0, result.stderr
    yield root, result.stdout


def test_install_produces_the_documented_tree(installed: tuple[Path, str]) -> None:
    root, out = installed
    missing = [rel for rel in DOCUMENTED if not os.path.lexists(root / rel)]
    assert missing == []
    for rule in sorted((REPO / "systemd").glob("*.rules")):
        assert (root / "etc/udev/rules.d" / rule.name).read_bytes() == rule.read_bytes()
    for profile in sorted((REPO / "config/profiles").glob("*.toml")):
        assert (root / "etc/seatbox/profiles" / profile.name).read_bytes() == profile.read_bytes()
    unit = root / "etc/systemd/system/seatbox.service"
    assert unit.read_bytes() == (REPO / "systemd/seatbox.service").read_bytes()
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/seatbox.service") == (
        "/etc/systemd/system/seatbox.service"
    )
    assert oct((root / "var/lib/seatbox").stat().st_mode & 0o777) == "0o750"
    assert oct((root / "etc/seatbox").stat().st_mode & 0o777) == "0o750"
    assert not (root / "etc/seatbox/seatbox.toml").exists(), "config comes from provision"
    assert "installed /etc/systemd/system/seatbox.service" in out
    assert "scratch root: no user created" in out


def test_installed_venv_runs_the_seatbox_command(installed: tuple[Path, str]) -> None:
    root, _ = installed
    result = run(str(root / "opt/seatbox/venv/bin/seatbox"), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "seatbox 0.1.0"


def test_second_install_changes_nothing(installed: tuple[Path, str]) -> None:
    root, _ = installed
    before = snapshot(root)
    result = run(*SEATBOX, "install", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "nothing to change: already installed as shipped"
    assert snapshot(root) == before


def test_shipped_unit_passes_systemd_analyze_verify(installed: tuple[Path, str]) -> None:
    root, _ = installed
    # verify resolves ExecStart= and the targets inside --root: lend it the host's own units.
    host_units = root / "usr/lib/systemd/system"
    if not host_units.exists():
        host_units.parent.mkdir(parents=True)
        host_units.symlink_to("/usr/lib/systemd/system")
    result = run("systemd-analyze", f"--root={root}", "verify", "seatbox.service")
    assert result.returncode == 0, result.stdout + result.stderr
    # The host's own absolute symlinks do not resolve under --root: those warnings are about
    # the lent units. Any other line is a finding.
    findings = [
        line
        for line in result.stderr.splitlines()
        if "Too many levels of symbolic links" not in line
    ]
    assert findings == [], result.stderr


def test_verify_fails_when_execstart_is_missing(tmp_path: Path) -> None:
    """The verify test above can fail: without the venv the same unit is rejected."""
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(REPO / "systemd/seatbox.service", tmp_path / "etc/systemd/system")
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/system").symlink_to("/usr/lib/systemd/system")
    result = run("systemd-analyze", f"--root={tmp_path}", "verify", "seatbox.service")
    assert result.returncode != 0
    assert "/opt/seatbox/venv/bin/seatbox is not executable" in result.stderr


def security_score(unit: Path) -> tuple[float, str]:
    result = run("systemd-analyze", "security", "--offline=true", "--no-pager", str(unit))
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", result.stdout)
    assert match, result.stdout[-500:]
    return float(match.group(1)), match.group(2)


def test_security_score_is_ok_or_better_and_recorded_in_operations_doc() -> None:
    score, rating = security_score(REPO / "systemd/seatbox.service")
    assert rating in {"PERFECT", "SAFE", "OK"}, (score, rating)
    doc = (REPO / "docs/operations.md").read_text()
    assert f"exposure {score:.1f} {rating}" in doc, "update the score in docs/operations.md"


def test_tmpfiles_and_sysusers_create_the_user_and_owned_state(tmp_path: Path) -> None:
    """The shipped sysusers.d and tmpfiles.d entries, applied by systemd's own tools."""
    for name in ("passwd", "group", "shadow", "gshadow"):
        if Path("/etc", name).exists():
            (tmp_path / "etc").mkdir(exist_ok=True)
            shutil.copy(Path("/etc", name), tmp_path / "etc" / name)
    (tmp_path / "etc/sysusers.d").mkdir(parents=True)
    (tmp_path / "etc/tmpfiles.d").mkdir(parents=True)
    shutil.copy(REPO / "systemd/seatbox.sysusers", tmp_path / "etc/sysusers.d/seatbox.conf")
    shutil.copy(REPO / "systemd/seatbox.tmpfiles", tmp_path / "etc/tmpfiles.d/seatbox.conf")
    result = run("systemd-sysusers", f"--root={tmp_path}")
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc/passwd").read_text()
    user = next(line for line in passwd.splitlines() if line.startswith("seatbox:"))
    uid, gid = int(user.split(":")[2]), int(user.split(":")[3])
    assert user.endswith(":/var/lib/seatbox:/usr/sbin/nologin")
    groups = {
        line.split(":")[0]: line.split(":")[3]
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    assert "seatbox" in groups["audio"].split(",") and "seatbox" in groups["dialout"].split(",")
    result = run("systemd-tmpfiles", f"--root={tmp_path}", "--create")
    assert result.returncode == 0, result.stderr
    state = (tmp_path / "var/lib/seatbox").stat()
    assert (state.st_uid, state.st_gid, state.st_mode & 0o777) == (uid, gid, 0o750)
    config = (tmp_path / "etc/seatbox").stat()
    assert (config.st_uid, config.st_gid, config.st_mode & 0o777) == (0, gid, 0o750)


def source_copy(tmp_path: Path) -> Path:
    """This source tree without its venv, so a test can add a file the installer ships."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", "build", ".*cache"
    )
    shutil.copytree(REPO, source, ignore=ignore, symlinks=True)
    return source


def test_make_install_with_destdir_is_idempotent_and_uninstall_keeps_config_and_state(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    make = ["make", "-s", "-C", str(REPO), f"PYTHON={sys.executable}", f"DESTDIR={root}"]
    first = run(*make, "install", "INSTALL_FLAGS=--no-venv")
    assert first.returncode == 0, first.stderr
    before = snapshot(root)
    second = run(*make, "install", "INSTALL_FLAGS=--no-venv")
    assert second.returncode == 0, second.stderr
    assert "nothing to change" in second.stdout
    assert snapshot(root) == before
    # A provisioned box: config and state must survive uninstall.
    (root / "etc/seatbox/seatbox.toml").write_text('[seat]\nsite = "s"\nid = "a"\n')
    (root / "var/lib/seatbox/outbox.sqlite").write_bytes(b"events")
    gone = run(*make, "uninstall")
    assert gone.returncode == 0, gone.stderr
    assert "removed   /etc/systemd/system/seatbox.service" in gone.stdout
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())
    assert "etc/seatbox/seatbox.toml" in left and "var/lib/seatbox/outbox.sqlite" in left
    assert [p for p in left if not p.startswith(("etc/seatbox/", "var/lib/seatbox/"))] == []
    again = run(*make, "uninstall")
    assert again.returncode == 0 and "removed" not in again.stdout


def test_every_rules_file_is_installed_and_removed(tmp_path: Path) -> None:
    source = source_copy(tmp_path)
    (source / "systemd/69-seatbox-extra.rules").write_text('SUBSYSTEM=="tty", GROUP="dialout"\n')
    root = tmp_path / "root"
    args = ["--root", str(root), "--source", str(source)]
    assert run(*SEATBOX, "install", "--no-venv", *args).returncode == 0
    assert (root / "etc/udev/rules.d/69-seatbox-extra.rules").is_file()
    assert run(*SEATBOX, "uninstall", *args).returncode == 0
    assert not (root / "etc/udev/rules.d/69-seatbox-extra.rules").exists()


def test_site_edited_profile_is_kept_and_new_version_written_beside_it(tmp_path: Path) -> None:
    source = source_copy(tmp_path)
    profiles = source / "config/profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "night.toml").write_text('name = "night"\n')
    root = tmp_path / "root"
    args = ["--no-venv", "--root", str(root), "--source", str(source)]
    assert run(*SEATBOX, "install", *args).returncode == 0
    installed = root / "etc/seatbox/profiles/night.toml"
    assert installed.read_text() == 'name = "night"\n'
    # A new release changes the profile; the box had not edited it: it is updated.
    (profiles / "night.toml").write_text('name = "night"\n# v2\n')
    assert run(*SEATBOX, "install", *args).returncode == 0
    assert installed.read_text().endswith("# v2\n")
    # The site edits it, then a release changes it again: the edit is kept, v3 lands beside it.
    installed.write_text('name = "night"\n# our site\n')
    (profiles / "night.toml").write_text('name = "night"\n# v3\n')
    result = run(*SEATBOX, "install", *args)
    assert result.returncode == 0
    assert installed.read_text().endswith("# our site\n")
    assert (root / "etc/seatbox/profiles/night.toml.dist").read_text().endswith("# v3\n")
    assert "was edited on this box: kept" in result.stdout
