"""The ``aco`` app: core commands here, the rest registered from sibling modules.

Only ``typer`` is imported at module level: ``aco route`` must start in well under a second,
so rich, numpy and langchain load inside the commands that need them.
"""

from __future__ import annotations

import importlib
import json

import typer

from aco_langchain.cli.common import checked_or_fail, fail, load_or_fail, read_text_or_fail

app = typer.Typer(
    name="aco",
    help="Agent cost optimizer: route prompts to the cheapest capable tier.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Validate or show a config.yaml.", no_args_is_help=True)
app.add_typer(config_app, name="config")

_JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
_CONFIG = typer.Option(
    None, "--config", "-c", help="config.yaml (default: $ACO_CONFIG or built-ins)."
)

#: Modules that add their own commands with ``register(app)``.
_COMMAND_MODULES = (
    "aco_langchain.cli.local_model_cmds",
    "aco_langchain.cli.agent_cmds",
    "aco_langchain.cli.router_cmds",
    "aco_langchain.cli.spend_cmds",
    "aco_langchain.cli.serve_cmds",
    "aco_langchain.cli.dashboard_cmds",
    "aco_langchain.cli.init_cmds",
    "aco_langchain.cli.replay_cmds",
    "aco_langchain.cli.outcome_cmds",
)


_load = load_or_fail


@app.command()
def version(as_json: bool = _JSON) -> None:
    """Print the installed version."""
    from aco_langchain import __version__

    if as_json:
        typer.echo(json.dumps({"version": __version__}))
    else:
        typer.echo(f"aco-langchain {__version__}")


@app.command()
def route(
    prompt: str | None = typer.Argument(
        None, help="The prompt to route; `-` reads it from standard input."
    ),
    file: str | None = typer.Option(None, "--file", "-f", help="Read the prompt from a file."),
    config: str | None = _CONFIG,
    as_json: bool = _JSON,
    available: bool = typer.Option(
        False, "--available", help="Apply tier availability (keys, local server) as a call would."
    ),
    force_tier: int | None = typer.Option(None, "--force-tier", min=1, max=5),
    max_cost_usd: float | None = typer.Option(None, "--max-cost-usd", min=0.0),
    max_latency_ms: float | None = typer.Option(None, "--max-latency-ms", min=0.0),
    min_quality: float | None = typer.Option(None, "--min-quality", min=0.0, max=1.0),
    task_type: str | None = typer.Option(None, "--task-type"),
    risk: str | None = typer.Option(None, "--risk", help="low | medium | high | critical"),
) -> None:
    """Route a request to the optimal tier: prints tier, model, cost estimate and reason."""
    from aco_langchain.config import TASK_TYPES
    from aco_langchain.errors import RoutingError, TierUnavailableError
    from aco_langchain.providers.tiers import TierRegistry
    from aco_langchain.routing import RouteRequest
    from aco_langchain.routing import route as do_route

    cfg = _load(config, as_json)
    if file is not None and prompt is not None:
        fail("give the prompt as an argument or with --file, not both", as_json)
    if file is not None:
        prompt = read_text_or_fail(file, "--file", as_json)
    elif prompt == "-":
        prompt = read_text_or_fail("-", "prompt", as_json)
    if prompt is None or not prompt.strip():
        fail('the prompt is empty: pass the text to route, e.g. aco route "What is 2+2?"', as_json)
    if task_type is not None and task_type not in TASK_TYPES:
        fail(f"--task-type {task_type!r} is unknown: use one of {', '.join(TASK_TYPES)}", as_json)
    if risk is not None and risk not in ("low", "medium", "high", "critical"):
        fail(f"--risk {risk!r} is unknown: use low, medium, high or critical", as_json)
    try:
        request = RouteRequest.from_text(
            prompt,
            force_tier=force_tier,
            max_cost_usd=max_cost_usd,
            max_latency_ms=max_latency_ms,
            min_quality=min_quality,
            task_type=task_type,
            risk=risk,
        )
        router = checked_or_fail(cfg, as_json)
        unavailable = TierRegistry(cfg).unavailable()
        decision = do_route(
            request, cfg, router=router, unavailable=unavailable if available else None
        )
    except (RoutingError, ValueError) as err:
        fail(str(err), as_json)
    live_tier: int | None = decision.tier
    if not available:
        try:
            live_tier = do_route(request, cfg, router=router, unavailable=unavailable).tier
        except TierUnavailableError:
            live_tier = None
    out = decision.as_routing_dict()
    out["complexity"] = decision.complexity
    out["router"] = getattr(router, "name", type(router).__name__)
    if unavailable:
        out["unavailable"] = {str(k): v for k, v in unavailable.items()}
        out["would_call_tier"] = live_tier
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(
        f"→ tier={decision.tier}, model={decision.model_id}, cost=${decision.cost_estimate:.4f}"
    )
    typer.echo(
        f"  task={decision.task_type} difficulty={decision.difficulty} "
        + (
            f"predicted_success={decision.confidence:.2f} "
            if decision.confidence is not None
            else "(forced: no assessment) "
        )
        + f"router={out['router']}"
    )
    typer.echo(f"  reason: {decision.reason}")
    if unavailable and live_tier != decision.tier:
        why = unavailable.get(decision.tier, "")
        if live_tier:
            now = f"a call would use tier {live_tier}"
        else:
            down = "; ".join(f"tier {n}: {w}" for n, w in sorted(unavailable.items()))
            now = f"a call would fail now: no tier is up ({down})"
        typer.echo(f"  now: tier {decision.tier} unavailable ({why}); {now}")


@config_app.command("validate")
def config_validate(
    path: str = typer.Argument(..., help="The config.yaml to check."), as_json: bool = _JSON
) -> None:
    """Check a config file: every check a real start runs (fields, finite numbers, TTL vs
    deadline, prices, router, and the ledger and cache opened); exit 1 if any fails, with
    one clear message per problem."""
    from aco_langchain.cli.preflight import startup_problems

    cfg = _load(path, as_json)
    checked_or_fail(cfg, as_json)
    problems = startup_problems(cfg)
    if problems:
        fail(f"{path}: {len(problems)} problem(s); " + "; ".join(problems), as_json)
    if as_json:
        typer.echo(json.dumps({"ok": True, "path": path}))
    else:
        typer.echo(f"{path}: ok ({len(cfg.models)} tiers, {len(cfg.task_floors)} task floors)")


@config_app.command("show")
def config_show(
    config: str | None = _CONFIG,
    as_json: bool = _JSON,
    sources: bool = typer.Option(
        False, "--sources", help="Print each effective value and where it came from."
    ),
) -> None:
    """Show the effective config (defaults filled in) as YAML or JSON."""
    from aco_langchain.redact import mask_obj, register_config

    cfg = _load(config, as_json)
    register_config(cfg)
    if sources:
        _show_sources(config, as_json)
        return
    data = mask_obj(cfg.model_dump(mode="json"))  # a key in a base_url is not printed
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    import yaml

    typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


def _show_sources(config: str | None, as_json: bool) -> None:
    import warnings

    from aco_langchain.config_sources import setting_sources
    from aco_langchain.errors import ConfigError, SettingMovedWarning
    from aco_langchain.redact import mask_obj

    try:
        with warnings.catch_warnings():  # _load printed them; the rows say "deprecated"
            warnings.simplefilter("ignore", SettingMovedWarning)
            rows = setting_sources(config)
    except ConfigError as err:  # _load already checked the file: this is a race, say it
        fail(str(err), as_json)
    found = [mask_obj({"key": r.key, "value": r.value, "source": r.source}) for r in rows]
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    width = max(len(r["key"]) for r in found)
    for r in found:
        typer.echo(f"{r['key']:<{width}}  {json.dumps(r['value'])}  ({r['source']})")


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
