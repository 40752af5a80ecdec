"""The CLI: commands work end to end; bad input gets one line and a non-zero exit code."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlearn.cli import main


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["swarmlearn", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI sets up logging for its process; each test here is one such process."""
    root, ours = logging.getLogger(), logging.getLogger("swarmlearn")
    saved = (root.handlers[:], root.level, ours.level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    ours.setLevel(saved[2])


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("SWARMLEARN_STORE", url)
    monkeypatch.setenv("COLUMNS", "200")
    return url


def test_run_eval_sessions_events(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(monkeypatch, capsys, "run", "troubleshooting", "-n", "2")
    assert code == 0 and "episode   1" in out and "session 1" in out
    code, out, _ = _cli(
        monkeypatch,
        capsys,
        "eval",
        "troubleshooting",
        "-n",
        "5",
        "--variant",
        "base",
        "--variant",
        "hard",
        "-o",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
    )
    assert code == 0 and "hard" in out
    assert json.loads((tmp_path / "r.json").read_text())["variants"][1]["variant"] == "hard"
    assert (tmp_path / "r.html").stat().st_size > 10_000
    code, out, _ = _cli(monkeypatch, capsys, "sessions")
    assert code == 0 and "eval" in out and "completed" in out
    code, out, _ = _cli(monkeypatch, capsys, "sessions", "--show", "1")
    assert code == 0 and "episode" in out
    code, out, _ = _cli(monkeypatch, capsys, "events", "tail", "-n", "3")
    assert code == 0 and len(out.strip().splitlines()) >= 3
    dest = tmp_path / "ev.jsonl"
    code, out, _ = _cli(
        monkeypatch, capsys, "events", "export", str(dest), "--session", "1", "--outcome", "success"
    )
    rows = [json.loads(line) for line in dest.read_text().splitlines()]
    assert code == 0 and rows and all(r["result"]["success"] for r in rows)
    assert all(r["session"] == 1 for r in rows)


def test_scenarios_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = _cli(monkeypatch, capsys, "scenarios", "list")
    assert code == 0 and "troubleshooting" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[environment]\nkind = "troubleshooting"\nservices = -1\n')
    code, out, err = _cli(
        monkeypatch, capsys, "scenarios", "validate", "examples/troubleshooting.toml", str(bad)
    )
    assert code == 3 and "ok" in out and f"{bad}:3: environment.services" in err.replace("\n", "")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["run", "no-such-scenario"], 3, "no such scenario file"),
        (["eval", "troubleshooting", "--variant", "zzz"], 3, "unknown variant 'zzz'"),
        (["run", "troubleshooting", "--store", "foo://x"], 5, "unsupported scheme 'foo'"),
        (["run", "troubleshooting", "--policy", "psychic"], 2, "unknown policy 'psychic'"),
        (["run", "troubleshooting", "--workers", "robots"], 2, "--workers: expected one of"),
        (["events", "tail", "--outcome", "maybe"], 2, "--outcome"),
        (["run", "troubleshooting", "--workers", "llm", "--llm-url", "http://127.0.0.1:1"], 7,
         "cannot reach LLM server at http://127.0.0.1:1"),
        (["run", "troubleshooting", "--workers", "llm", "--llm-url", "notaurl"], 2,
         "malformed URL 'notaurl'"),
        (["run", "troubleshooting", "--workers", "llm", "--llm-model", "/nope.gguf"], 2,
         "no such file"),
        # click-based typer (< 0.21, which flwr pins) names the metavar; typer >= 0.22 the name
        (["run"], 2, ("Missing argument 'scenario'. (see `swarmlearn run --help`)",
                      "Missing argument 'SCENARIO'. (see `swarmlearn run --help`)")),
        (["run", "troubleshooting", "-n", "x"], 2, "Invalid value for '-n' / '--episodes'"),
        (["sessions", "--colour"], 2, ("No such option: --colour",
                                       "No such option '--colour'.")),
        (["run", "troubleshooting", "-n", "-3"], 2, "-n/--episodes: expected >= 1, got -3"),
        (["eval", "troubleshooting", "-n", "0"], 2, "-n/--runs: expected >= 1, got 0"),
        (["eval", "troubleshooting", "--attempts", "-1"], 2, "--attempts: expected >= 1, got -1"),
        (["demo", "--sessions", "-2"], 2, "--sessions: expected >= 1, got -2"),
        (["events", "tail", "-n", "-2"], 2, "-n/--limit: expected >= 1, got -2"),
        (["events", "export", "-", "--limit", "-1"], 2, "--limit: expected >= 1, got -1"),
        (["sessions", "--limit", "-1"], 2, "-n/--limit: expected >= 1, got -1"),
        (["profile", "bootstrap", "troubleshooting", "--episodes", "0"], 2,
         "--episodes: expected >= 1, got 0"),
        (["snapshot", "list", "--latest", "0"], 2, "--latest: expected >= 1, got 0"),
        (["learn", "analyze", "troubleshooting", "--sessions", "-1"], 2,
         "--sessions: expected >= 1, got -1"),
        (["learn", "analyze", "troubleshooting", "--trials", "-1"], 2,
         "--trials: expected >= 0, got -1"),
    ],
)
def test_bad_input_gets_one_line(
    store: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    fragment: str | tuple[str, ...],
) -> None:
    got, _, err = _cli(monkeypatch, capsys, *args)
    assert got == code
    wanted = (fragment,) if isinstance(fragment, str) else fragment
    assert any(f in _one_line(err) for f in wanted), _one_line(err)


# -- output files ---------------------------------------------------------------------------
def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["events", "export", "{missing}/x.jsonl"], "OUT: no such directory"),
        (["events", "export", "{dir}"], "is a directory, expected a file path"),
        (["eval", "troubleshooting", "-n", "2", "-o", "{missing}/r.json"],
         "-o/--output: no such directory"),
        (["eval", "troubleshooting", "-n", "2", "--html", "{missing}/r.html"],
         "--html: no such directory"),
        (["eval", "troubleshooting", "--learning", "-o", "{missing}/r.json"],
         "-o/--output: no such directory"),
        (["eval", "troubleshooting", "-n", "2", "-o", "{dir}/r", "--html", "{dir}/r"],
         "is also the -o/--output file"),
        (["demo", "--out", "{missing}/d.html"], "--out: no such directory"),
        (["snapshot", "export", "session", "1", "{missing}/s.json"], "OUT: no such directory"),
        (["events", "export", "{file}/x.jsonl"], "is not a directory"),
    ],
)
def test_output_paths_are_checked_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    db = tmp_path / "store.db"
    monkeypatch.setenv("SWARMLEARN_STORE", str(db))
    (tmp_path / "file").write_text("x")
    where = {"missing": str(tmp_path / "missing"), "dir": str(tmp_path),
             "file": str(tmp_path / "file")}
    code, _, err = _cli(monkeypatch, capsys, *[a.format(**where) for a in args])
    assert code == 2 and fragment in _one_line(err)
    assert not db.exists() and not (tmp_path / "missing").exists()  # nothing ran, nothing made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_write_is_one_line_and_keeps_the_old_file(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = tmp_path / "r.json"
    old.write_text("old report")

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", full_disk)
    code, _, err = _cli(monkeypatch, capsys, "eval", "troubleshooting", "-n", "2", "-o", str(old))
    # the write fails after the work, so the progress lines of the work come before the error
    work, error = err.split("error: ", 1)
    assert all(x.startswith("eval troubleshooting: ") for x in work.splitlines()), err
    assert code == 2 and "-o/--output: cannot write" in _one_line(error)
    assert "No space left on device" in err
    assert old.read_text() == "old report"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_events_export_writes_nothing_when_the_store_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ev.jsonl"
    dest.write_text("previous export\n")
    code, _, err = _cli(monkeypatch, capsys, "events", "export", str(dest), "--store",
                        "foo://x")
    assert code == 5 and "unsupported scheme" in _one_line(err)
    assert dest.read_text() == "previous export\n"


# -- read-only commands ---------------------------------------------------------------------
READ_ONLY = [
    ["events", "tail"],
    ["events", "export", "-"],
    ["sessions"],
    ["sessions", "--show", "1"],
    ["profile", "list"],
    ["profile", "show", "troubleshooting"],
    ["snapshot", "list"],
    ["learn", "analyze", "troubleshooting"],
]


LISTINGS = {"events tail": "no events yet", "sessions": "no sessions yet",
            "profile list": "no profiles", "snapshot list": "no snapshots"}


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_create_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    """A listing says there is nothing yet (exit 0); a lookup or export fails (exit 5)."""
    monkeypatch.delenv("SWARMLEARN_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    for store, url in (([], "sqlite:///.swarmlearn/swarmlearn.db"),  # the default store
                       (["--store", "elsewhere/x.db"], "sqlite:///elsewhere/x.db")):
        code, out, err = _cli(monkeypatch, capsys, *args, *store)
        listing = LISTINGS.get(" ".join(args))
        if listing:
            assert code == 0 and out.strip() == f"{listing}: no store at {url}", out + err
        else:
            assert code == 5 and f"no store at {url}: nothing has been recorded" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_commands_on_an_empty_store_say_so_and_change_nothing(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from swarmlearn.store import SqlStore

    SqlStore(store).close()
    db = tmp_path / "cli.db"
    before = _digest(db)
    code, out, _ = _cli(monkeypatch, capsys, "sessions")
    assert code == 0 and out.startswith("no sessions yet in ")
    code, out, _ = _cli(monkeypatch, capsys, "events", "tail")
    assert code == 0 and out.startswith("no events yet in ")
    for args in READ_ONLY:
        _cli(monkeypatch, capsys, *args)
    assert _digest(db) == before


def test_a_read_only_command_does_not_migrate_an_old_store(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sqlite3

    from swarmlearn.store import SqlStore

    SqlStore(store).close()
    db = tmp_path / "cli.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    before = _digest(db)
    code, _, err = _cli(monkeypatch, capsys, "sessions")
    assert code == 6 and "schema version 1" in _one_line(err) and "migrates it" in err
    assert _digest(db) == before


def test_validate_rejects_what_run_rejects_with_the_same_line(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[environment]\nkind = "troubleshooting"\n[workers]\npolicy = "bogus"\n')
    code, out, err = _cli(monkeypatch, capsys, "scenarios", "validate", str(bad))
    assert code == 3 and "ok" not in out
    line = _one_line(err)
    assert line.startswith(f"error: {bad}:4: workers.policy: unknown policy 'bogus'")
    code, _, err = _cli(monkeypatch, capsys, "run", str(bad))
    assert code == 3 and _one_line(err) == line


# -- tables ---------------------------------------------------------------------------------
BUILTIN = ["code_exploration", "internal_diagnosis", "maze", "search", "troubleshooting"]


def test_piped_tables_are_written_in_full(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # a pipe is not an 80-column terminal
    code, out, _ = _cli(monkeypatch, capsys, "eval", "troubleshooting", "-n", "3",
                        "--all-variants")
    assert code == 0 and "…" not in out
    header = next(line for line in out.splitlines() if line.startswith("variant"))
    assert header.split() == ["variant", "runs", "success", "(95%", "CI)", "actions", "(95%",
                              "CI)", "actions", "to", "solve", "ticks", "score", "invalid"]
    assert all(re.search(rf"^{v}\s+3×1\s+\d+% \(\d+%–\d+%\)", out, re.M)
               for v in ("base", "hard", "strict", "heldout", "solo"))
    code, out, _ = _cli(monkeypatch, capsys, "sessions")
    assert code == 0 and "…" not in out and out.count("troubleshooting[heldout]") == 1
    code, out, _ = _cli(monkeypatch, capsys, "scenarios", "list")
    assert code == 0 and "…" not in out
    assert [line.split()[0] for line in out.splitlines()[3:]] == BUILTIN


@pytest.mark.parametrize("width", [80, 50])
def test_narrow_terminals_never_cut_a_name(
    store: str, width: int, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    from rich.console import Console

    import swarmlearn.cli as cli

    _cli(monkeypatch, capsys, "eval", "troubleshooting", "-n", "2", "--variant", "heldout")
    shown = {}
    for args in (["scenarios", "list"], ["sessions"], ["sessions", "--show", "1"]):
        screen = io.StringIO()
        monkeypatch.setattr(cli, "console", Console(file=screen, width=width))
        assert _cli(monkeypatch, capsys, *args)[0] == 0
        shown[args[-1]] = screen.getvalue()
        assert "…" not in shown[args[-1]]
        if width == 80:  # the table fits; a title naming a long path may run longer
            assert max(len(line) for line in shown[args[-1]].splitlines()[1:]) <= 80
    names = [line.split()[0] for line in shown["list"].splitlines()[3:] if line[:1].isalpha()]
    assert names == BUILTIN
    assert re.search(r"^ 1  troubleshooting  eval\s+eval-\d+\s+completed", shown["sessions"], re.M)
    assert re.search(r"^    \[heldout\]", shown["sessions"], re.M)  # under its scenario


# -- conventions ----------------------------------------------------------------------------
def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = getattr(command, "commands", {})
    return [path, *[p for name, sub in subs.items() for p in _commands(sub, (*path, name))]]


def test_help_shows_no_value_for_flags_and_reflows_prose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from swarmlearn.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    paths = _commands(typer.main.get_command(app))
    assert ("sessions",) in paths and ("events", "tail") in paths and len(paths) > 20
    for path in paths:
        code, out, _ = _cli(monkeypatch, capsys, *path, "--help")
        assert code == 0 and "Usage:" in out, path
        assert "<bool>" not in out, path  # a flag takes no value
    _, out, _ = _cli(monkeypatch, capsys, "--help")
    assert re.search(r"--verbose\s+-v\s+More log output", out)  # no <int> for a counter
    monkeypatch.setenv("COLUMNS", "400")
    _, out, _ = _cli(monkeypatch, capsys, "eval", "--help")
    para = next(line.strip() for line in out.splitlines() if "With --learning:" in line)
    assert para.endswith("the learning curves.")  # one line when there is room for one


@pytest.mark.parametrize("command", [["run"], ["eval"], ["profile", "bootstrap"]])
def test_policy_help_lists_the_choices(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from swarmlearn.core.scenario import POLICIES

    monkeypatch.setenv("COLUMNS", "300")
    _, out, _ = _cli(monkeypatch, capsys, *command, "--help")
    assert " | ".join(POLICIES) in out


def test_verbose_flags_turn_on_swarmlearn_logs(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "troubleshooting", "-n", "1", "--no-store"]
    code, _, err = _cli(monkeypatch, capsys, *args)
    assert code == 0 and err == ""
    code, _, err = _cli(monkeypatch, capsys, "-v", *args)
    assert code == 0 and "INFO swarmlearn.core.scenario: scenario troubleshooting from" in err
    assert "DEBUG" not in err
    code, _, err = _cli(monkeypatch, capsys, "-vv", *args)
    assert code == 0 and "DEBUG swarmlearn.core.scenario: read " in err
    assert all(" swarmlearn." in line for line in err.splitlines())  # no other library's logs
