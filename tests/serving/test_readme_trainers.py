"""The README's trainer snippets (section "FLR as an RL reward"), each run against a live server on
the tiny model: `flr serve` lines through `flr`'s own parser, the trainers' flags checked against
the names their current sources define, and the reward each snippet wires up actually called.

Flag names, read in the trainers' sources:
- OpenRLHF 0.11 (commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7), `openrlhf/cli/train_ppo_ray.py`:
  `parser.add_argument("--reward.remote_url", ...)`; a value ending in `.py` is loaded as a
  reward_func file (`openrlhf/utils/agent.py`), anything else is POSTed to.
- verl (commit b178a3cd56f58b2d502255daba591e92833930a7), `verl/trainer/config/ppo_trainer.yaml`:
  `custom_reward_function.path` / `.name` exist, `reward_kwargs` is not in the yaml, so it needs
  hydra's `+`; `verl/experimental/reward_loop/reward_manager/registry.py` knows naive, dapo,
  rate_limited and remote only (`reward_manager=batch` is "Unknown reward manager").
- TRL 1.16 (installed): `GRPOTrainer.__init__` and `GRPOConfig`, by introspection.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import json
import pickle
import re
import shlex

import httpx
import pytest

from core.cli.main import build_parser
from core.cli.serve import serve_config_from_args
from core.serving.server import ServeConfig
from tests.serving.test_burst import Serving
from tests.serving.test_openrlhf_reward_func import load_reward_func
from tests.serving.verl_rows import DAHOAS_EXAMPLES, ROOT, gsm8k_rows, hh_rows, load_reward_module, reward_loop_batch

TOKEN = "readme-s3cret"
OPENRLHF_FLAGS = {"--reward.remote_url"}
VERL_KEYS = {"custom_reward_function.path", "custom_reward_function.name"}
VERL_MANAGERS = {"naive", "dapo", "rate_limited", "remote"}


def trainer_blocks() -> dict[str, list[tuple[str, str]]]:
    """{trainer: [(language, code), ...]} for each **Trainer** paragraph of the RL section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## FLR as an RL reward", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, list[tuple[str, str]]] = {}
    for part in re.split(r"\n\*\*(OpenRLHF|TRL|verl)\*\*", section)[1:]:
        if part in ("OpenRLHF", "TRL", "verl"):
            name = part
            continue
        blocks[name] = re.findall(r"```(\w+)\n(.*?)```", part, flags=re.S)
    return blocks


def commands(code: str) -> list[list[str]]:
    """A bash block as argument lists: continuations joined, comments and `&` dropped, $FLR_SERVE_TOKEN set."""
    joined = code.replace("\\\n", " ").replace("$FLR_SERVE_TOKEN", TOKEN)
    out = []
    for line in joined.splitlines():
        argv = shlex.split(line, comments=True)
        if argv and argv[-1] == "&":
            argv = argv[:-1]
        if argv:
            out.append(argv)
    return out


@pytest.fixture(scope="module")
def blocks():
    found = trainer_blocks()
    assert set(found) == {"OpenRLHF", "TRL", "verl"}, "the README's RL section lost a trainer"
    return found


def serving_from(argv: list[str], scorer) -> Serving:
    assert argv[:2] == ["flr", "serve"]
    config = serve_config_from_args(build_parser().parse_args(argv[1:]))
    assert config.token == TOKEN and config.port == 8000
    return Serving(scorer, config)


def local(url: str, serving: Serving) -> str:
    assert url.startswith("http://127.0.0.1:8000")
    return serving.url + url[len("http://127.0.0.1:8000"):]


def test_openrlhf_snippets(blocks, tiny_scorer, monkeypatch):
    (lang1, direct), (lang2, file_way) = blocks["OpenRLHF"]
    assert lang1 == lang2 == "bash"
    serve, train = commands(direct)
    train = [a for a in train if a != "..."]
    assert train[:3] == ["python", "-m", "openrlhf.cli.train_ppo_ray"]
    flags = {a for a in train if a.startswith("--")}
    assert flags <= OPENRLHF_FLAGS, f"flags OpenRLHF 0.11 does not define: {flags - OPENRLHF_FLAGS}"
    url = train[train.index("--reward.remote_url") + 1]
    with serving_from(serve, tiny_scorer) as serving:
        # OpenRLHF's own client: {"query", "prompts", "labels"}, no headers of ours
        query = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>"
        answer = httpx.post(local(url, serving), json={"query": [query], "prompts": [None], "labels": [None]})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["rewards"]) == 1 and answer.json()["extra_logs"]

        serve2, submit = commands(file_way)
        assert serve2 == serve and submit[:3] == ["ray", "job", "submit"]
        env = json.loads(next(a for a in submit if a.startswith("--runtime-env-json="))
                         .split("=", 1)[1])["env_vars"]
        train = [a for a in submit[submit.index("--") + 1:] if a != "..."]
        assert train[:3] == ["python3", "-m", "openrlhf.cli.train_ppo_ray"]
        assert {a for a in train if a.startswith("--")} <= OPENRLHF_FLAGS
        path = train[train.index("--reward.remote_url") + 1]
        assert path.endswith(".py") and (ROOT / path).is_file()  # OpenRLHF loads it as a reward_func file
        monkeypatch.setenv("FLR_SERVE_URL", local(env["FLR_SERVE_URL"], serving))
        monkeypatch.setenv("FLR_SERVE_TOKEN", env["FLR_SERVE_TOKEN"])
        got = load_reward_func().reward_func([query], [None], [None])
    assert got["rewards"].tolist() == pytest.approx(answer.json()["rewards"], abs=1e-5)
    assert set(got["extra_logs"]) == set(answer.json()["extra_logs"])


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def test_trl_snippet(blocks, tiny_scorer, tiny_model_dir):
    import trl

    ((lang, code),) = blocks["TRL"]
    assert lang == "python"
    tree = ast.parse(code)
    (trainer_call,) = _calls(tree, "GRPOTrainer")
    accepted = set(inspect.signature(trl.GRPOTrainer.__init__).parameters)
    assert {k.arg for k in trainer_call.keywords} <= accepted
    fields = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    assert all({k.arg for k in c.keywords} <= fields for c in _calls(tree, "GRPOConfig"))
    remote = re.search(r"# (reward = FLRReward\(url=.*?\))", code).group(1)
    namespace: dict = {}
    exec("\n".join(line for line in code.splitlines() if line.startswith("from ")), namespace)
    local_line = next(line for line in code.splitlines() if line.startswith("reward = "))
    exec(local_line.split("#")[0].replace('"embedded"', repr(str(tiny_model_dir))), namespace)
    local_reward = namespace["reward"]
    with Serving(tiny_scorer, ServeConfig(token=TOKEN)) as serving:
        exec(remote.replace("http://127.0.0.1:8000", serving.url).replace("token=...", f"token={TOKEN!r}"),
             namespace)
        remote_reward = pickle.loads(pickle.dumps(namespace["reward"]))  # TRL's async GRPO pickles it
        prompts = [[{"role": "user", "content": "What is 2+2?"}], "Name a colour."]
        completions = [[{"role": "assistant", "content": "4."}], " Blue."]
        logged: dict = {}
        call = {"prompts": prompts, "completions": completions, "completion_ids": [[1], [2]],
                "log_metric": logged.__setitem__, "log_extra": lambda *a: None}
        got_remote = remote_reward(**call)
    got_local = local_reward(**call)
    assert got_remote == pytest.approx(got_local, abs=1e-4)
    assert "flr/relevance" in logged


def test_verl_snippet(blocks, tiny_scorer):
    ((lang, code),) = blocks["verl"]
    assert lang == "bash"
    serve, train = commands(code)
    assert train[:3] == ["python", "-m", "verl.trainer.main_ppo"]
    overrides = dict(a.split("=", 1) for a in train[3:] if a != "...")
    plain = {k for k in overrides if not k.startswith("+")}
    assert plain <= VERL_KEYS, f"keys verl's ppo_trainer.yaml lacks (they need '+'): {plain - VERL_KEYS}"
    assert overrides.get("reward_model.reward_manager", "naive") in VERL_MANAGERS
    assert (ROOT / overrides["custom_reward_function.path"]).is_file()
    module = load_reward_module()
    fn = getattr(module, overrides["custom_reward_function.name"])
    kwargs = {k.removeprefix("+custom_reward_function.reward_kwargs."): v
              for k, v in overrides.items() if k.startswith("+custom_reward_function.reward_kwargs.")}
    assert set(kwargs) == {"flr_url", "flr_token"}
    rows = hh_rows(DAHOAS_EXAMPLES) + gsm8k_rows()
    with serving_from(serve, tiny_scorer) as serving:
        kwargs["flr_url"] = local(kwargs["flr_url"], serving)
        results = asyncio.run(reward_loop_batch(fn, rows, ["Cheddar.", "Six minutes.", "#### 72", "#### 10"],
                                                kwargs))
    assert all(isinstance(r["score"], float) and "flr_relevance" in r for r in results)
