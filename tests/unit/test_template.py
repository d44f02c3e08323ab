"""The deployment definition (template.yaml) keeps the promises the code relies on.

`make deploy-check` lints and builds the template with the SAM CLI; these tests check what
cfn-lint cannot know: handlers on disk, one shared layer, no secret in the environment, CORS
from a parameter, purge on a schedule without a URL, timeouts above one host call at its
limits, and every setting each function checks at start-up.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from wa_gateway.needs import require
from wa_gateway.settings import SECRET_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

HANDLER_DIRS = {
    "start_session",
    "status",
    "send_message",
    "disconnect",
    "qr_webhook",
    "purge",
    "scheduler",
    "reconcile",
    "api_keys",
    "delivery",
    "media",
}
BROWSER_DIRS = {"start_session", "status", "send_message", "disconnect", "api_keys"}
URL_DIRS = BROWSER_DIRS | {"qr_webhook"}
SECRETS_PARAMETER = "SecretsArn"
# Non-secret settings the template may set as plain environment values.
PLAIN_ENV = {
    "SECRETS_ARN",
    "SUPABASE_URL",
    "SUPABASE_JWKS_URL",
    "SUPABASE_JWT_ISSUER",
    "WPP_SERVER_URL",
    "WEBHOOK_PUBLIC_URL",
    "ALLOWED_ORIGINS",
    "QR_TTL",
    "MESSAGE_RETENTION",
    "MEDIA_FUNCTION",
    "SCHEDULE_GRACE",
    "MAX_SCHEDULED_PER_USER",
    "STALE_AFTER",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "GATEWAY_VERSION",
    "SUPABASE_PUBLISHABLE_KEY",
    "SECRETS_EXTENSION",
    "SECRETS_MANAGER_TTL",
    "DELIVERY_FUNCTION",
}
# Parameters whose names sound secret but whose values are public.
PUBLIC_PARAMETERS = {
    "SupabasePublishableKey",  # the browser holds it too; RLS applies to it
    "SecretsExtensionLayerArn",  # AWS's published layer
}
EXTENSION_LAYER = {
    "Fn::If": ["HasSecretsExtension", {"Ref": "SecretsExtensionLayerArn"}, {"Ref": "AWS::NoValue"}]
}
DB_MARGIN_S = Settings().db_timeout_s


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms (!Ref, !GetAtt, !Sub...) as long forms."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def _load(path: Path) -> dict[str, Any]:
    loader = _CfnLoader(path.read_text(encoding="utf-8"))
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load(TEMPLATE)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Handler dir -> the function's properties with Globals.Function applied (as SAM merges)."""
    glob = template.get("Globals", {}).get("Function", {})
    out: dict[str, dict[str, Any]] = {}
    for logical_id, res in _resources(template, "AWS::Serverless::Function").items():
        props = res["Properties"]
        merged = {**glob, **props, "LogicalId": logical_id}
        env = {
            **glob.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        merged["Environment"] = {"Variables": env}
        code_dir = Path(props["CodeUri"])
        assert code_dir.parts[0] == "functions", f"{logical_id}: CodeUri outside functions/"
        out[code_dir.name] = merged
    return out


def _walk(value: Any) -> list[Any]:
    """Every node of a parsed YAML value."""
    nodes = [value]
    if isinstance(value, dict):
        for v in value.values():
            nodes.extend(_walk(v))
    elif isinstance(value, list):
        for v in value:
            nodes.extend(_walk(v))
    return nodes


def _refs(value: Any) -> set[str]:
    return {n["Ref"] for n in _walk(value) if isinstance(n, dict) and "Ref" in n}


def test_one_function_per_handler_dir(template: dict[str, Any]) -> None:
    assert set(_functions(template)) == HANDLER_DIRS


def test_every_function_is_arm64_python312_with_the_layer(template: dict[str, Any]) -> None:
    layers = _resources(template, "AWS::Serverless::LayerVersion")
    assert list(layers) == ["GatewayLayer"]
    for name, fn in _functions(template).items():
        assert fn["Runtime"] == "python3.12", name
        assert fn["Architectures"] == ["arm64"], name
        assert fn["Layers"] == [{"Ref": "GatewayLayer"}, EXTENSION_LAYER], name


def test_layer_is_built_from_its_requirements_and_shared_code(template: dict[str, Any]) -> None:
    layer = template["Resources"]["GatewayLayer"]
    props = layer["Properties"]
    assert Path(props["ContentUri"]) == Path("layers/gateway")
    assert props["CompatibleRuntimes"] == ["python3.12"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (ROOT / "layers/gateway/Makefile").read_text(encoding="utf-8")
    assert "build-GatewayLayer:" in makefile
    assert "shared/wa_gateway" in makefile
    assert (ROOT / "layers/gateway/requirements.txt").is_file()
    assert (ROOT / "shared/wa_gateway").is_dir()
    requirements = (ROOT / "layers/gateway/requirements.txt").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(boto3|botocore)\b", requirements, re.M), "the runtime ships boto3"


def test_every_handler_exists_on_disk(template: dict[str, Any]) -> None:
    for name, fn in _functions(template).items():
        module, func = fn["Handler"].rsplit(".", 1)
        source = ROOT / fn["CodeUri"] / f"{module.replace('.', '/')}.py"
        assert source.is_file(), f"{name}: {source} is missing"
        tree = ast.parse(source.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        defined |= {
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        assert func in defined, f"{name}: {source} defines no {func}"


def test_functions_ship_only_their_handler(template: dict[str, Any]) -> None:
    """Dependencies and shared code belong in the layer, not in each function's folder."""
    for name, fn in _functions(template).items():
        folder = ROOT / fn["CodeUri"]
        assert not (folder / "wa_gateway").exists(), name
        requirements = folder / "requirements.txt"
        if requirements.exists():
            lines = requirements.read_text(encoding="utf-8").splitlines()
            assert not [x for x in lines if x.strip() and not x.startswith("#")], name


def test_no_secret_in_the_environment(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    envs = [fn["Environment"]["Variables"] for fn in _functions(template).values()]
    for env in envs:
        assert env["SECRETS_ARN"] == {"Ref": SECRETS_PARAMETER}
        assert not set(env) & set(SECRET_NAMES), "secrets come from SECRETS_ARN at run time"
        assert set(env) <= PLAIN_ENV, set(env) - PLAIN_ENV
        for name, value in env.items():
            text = str(value)
            assert "resolve:secretsmanager" not in text, name
            assert "resolve:ssm" not in text, name
            for ref in _refs(value):
                if ref in params:
                    assert not params[ref].get("NoEcho"), f"{name} exposes NoEcho {ref}"
            if isinstance(value, str):
                assert len(value) < 40, f"{name}: long literal"
                assert not re.fullmatch(r"[A-Za-z0-9+/=_-]{24,}", value), f"{name}: key-like"
    # No parameter carries a secret value: only the secret's ARN.
    for name, param in params.items():
        if name == SECRETS_PARAMETER or name in PUBLIC_PARAMETERS:
            continue
        assert not re.search(r"(secret|key|token|password)", name, re.I), name
        assert not param.get("NoEcho"), name


def test_functions_may_read_only_the_gateway_secret(template: dict[str, Any]) -> None:
    secret = {"SecretArn": {"Ref": SECRETS_PARAMETER}}
    read_secret = {"AWSSecretsManagerGetSecretValuePolicy": secret}
    for name, fn in _functions(template).items():
        assert read_secret in fn["Policies"], name


def test_cors_origins_come_from_the_parameter(template: dict[str, Any]) -> None:
    param = template["Parameters"]["AllowedOrigins"]
    assert param["Type"] == "CommaDelimitedList"
    assert "Default" not in param, "AllowedOrigins must be given at deploy time"
    rule_text = str(template["Rules"])
    assert "AllowedOrigins" in rule_text
    assert "'*'" in rule_text, "a rule must refuse '*'"
    assert "*" not in str(template.get("Globals", {}).get("Function", {}).get("FunctionUrlConfig"))
    for name, fn in _functions(template).items():
        assert fn["Environment"]["Variables"]["ALLOWED_ORIGINS"] == {
            "Fn::Join": [",", {"Ref": "AllowedOrigins"}]
        }, name
        cors = fn.get("FunctionUrlConfig", {}).get("Cors")
        if name in BROWSER_DIRS:
            assert cors is not None, name
            assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}, name
            assert "*" not in str(cors), name
            assert cors.get("AllowCredentials") is not True, name
        else:
            assert cors is None, f"{name} is not called from a browser"


def test_url_functions_have_public_urls_and_outputs(template: dict[str, Any]) -> None:
    outputs = [o["Value"] for o in template["Outputs"].values()]
    for name, fn in _functions(template).items():
        if name not in URL_DIRS:
            continue
        assert fn["FunctionUrlConfig"]["AuthType"] == "NONE", name
        url = {"Fn::GetAtt": [f"{fn['LogicalId']}Url", "FunctionUrl"]}
        assert url in outputs, f"{name}: no Output for its URL"


def test_start_session_tells_the_host_the_webhook_url(template: dict[str, Any]) -> None:
    fns = _functions(template)
    webhook_url = {"Fn::GetAtt": [f"{fns['qr_webhook']['LogicalId']}Url", "FunctionUrl"]}
    value = fns["start_session"]["Environment"]["Variables"]["WEBHOOK_PUBLIC_URL"]
    assert webhook_url in _walk(value)
    # A function cannot reference its own URL (circular dependency).
    assert "WEBHOOK_PUBLIC_URL" not in fns["qr_webhook"]["Environment"]["Variables"]


def test_purge_runs_on_a_schedule_without_url(template: dict[str, Any]) -> None:
    purge = _functions(template)["purge"]
    assert "FunctionUrlConfig" not in purge
    events = purge["Events"].values()
    schedules = [e for e in events if e["Type"] == "ScheduleV2"]
    assert len(schedules) == 1
    assert schedules[0]["Properties"]["ScheduleExpression"] == {"Ref": "PurgeSchedule"}
    assert template["Parameters"]["PurgeSchedule"]["Default"] == "rate(1 hour)"
    other = set(_resources(template, "AWS::Lambda::Url"))
    assert not other, "function URLs are declared with FunctionUrlConfig only"


def test_timeouts_exceed_the_host_clients(template: dict[str, Any]) -> None:
    defaults = Settings()
    host_call = defaults.host_connect_timeout_s + defaults.host_read_timeout_s
    host_start = defaults.host_connect_timeout_s + defaults.host_start_timeout_s
    fns = _functions(template)
    for name, fn in fns.items():
        assert fn["Timeout"] > host_call + DB_MARGIN_S, name
    assert fns["start_session"]["Timeout"] >= 30
    assert fns["start_session"]["Timeout"] > host_start + DB_MARGIN_S
    assert fns["purge"]["Timeout"] >= 60, "purge works through batches"


def test_logs_are_kept_for_a_configurable_time(template: dict[str, Any]) -> None:
    groups = _resources(template, "AWS::Logs::LogGroup")
    for name, fn in _functions(template).items():
        group = fn["LoggingConfig"]["LogGroup"]["Ref"]
        assert group in groups, name
        assert groups[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_reserved_concurrency_can_be_turned_off(template: dict[str, Any]) -> None:
    reserved = {
        name: fn["ReservedConcurrentExecutions"]
        for name, fn in _functions(template).items()
        if "ReservedConcurrentExecutions" in fn
    }
    assert {"qr_webhook", "send_message", "start_session"} <= set(reserved)
    for name, value in reserved.items():
        cond, _on, off = value["Fn::If"]
        assert cond == "HasReservedConcurrency", name
        assert off == {"Ref": "AWS::NoValue"}, name


def test_the_purge_and_the_scheduler_run_one_pass_at_a_time(template: dict[str, Any]) -> None:
    """A scheduler pass holds what it claims for the rest of its invocation: a second pass
    meanwhile would find nothing to send (and with reservations off it sends nothing twice,
    each message being fenced by its attempt)."""
    fns = _functions(template)
    for name in ("purge", "scheduler"):
        cond, on, off = fns[name]["ReservedConcurrentExecutions"]["Fn::If"]
        assert (cond, on, off) == ("HasReservedConcurrency", 1, {"Ref": "AWS::NoValue"}), name


def test_the_scheduled_limit_is_a_parameter_send_message_reads(template: dict[str, Any]) -> None:
    param = template["Parameters"]["MaxScheduledPerUser"]
    assert (param["Type"], param["Default"], param["MinValue"]) == ("Number", 1000, 1)
    variables = _functions(template)["send_message"]["Environment"]["Variables"]
    assert variables["MAX_SCHEDULED_PER_USER"] == {"Ref": "MaxScheduledPerUser"}
    assert Settings.load({"MAX_SCHEDULED_PER_USER": "25"}).max_scheduled_per_user == 25


def test_the_schedule_sends_the_sample_purge_event(template: dict[str, Any]) -> None:
    import json

    purge = _functions(template)["purge"]
    [schedule] = [e["Properties"] for e in purge["Events"].values() if e["Type"] == "ScheduleV2"]
    sample = json.loads((ROOT / "events" / "purge_scheduled.json").read_text())
    assert json.loads(schedule["Input"]) == sample


def test_the_secrets_extension_comes_with_its_switch_or_not_at_all(
    template: dict[str, Any],
) -> None:
    """The layer and SECRETS_EXTENSION hang on one condition: a function told to use the
    extension always has it, and one without it reads the secret with boto3."""
    param = template["Parameters"]["SecretsExtensionLayerArn"]
    assert param["Default"] == ""
    assert re.fullmatch(param["AllowedPattern"], "")
    published = (
        "arn:aws:lambda:eu-west-1:123456789012:layer:"
        "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:12"
    )
    assert re.fullmatch(param["AllowedPattern"], published)
    assert not re.fullmatch(param["AllowedPattern"], published.replace("-Arm64", ""))
    assert template["Conditions"]["HasSecretsExtension"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SecretsExtensionLayerArn"}, ""]}]
    }
    for name, fn in _functions(template).items():
        env = fn["Environment"]["Variables"]
        assert EXTENSION_LAYER in fn["Layers"], name
        assert env["SECRETS_EXTENSION"] == {
            "Fn::If": ["HasSecretsExtension", "true", {"Ref": "AWS::NoValue"}]
        }, name


def test_the_scheduler_runs_every_minute_without_url_and_sends_the_sample_event(
    template: dict[str, Any],
) -> None:
    import json

    scheduler = _functions(template)["scheduler"]
    [schedule] = [
        e["Properties"] for e in scheduler["Events"].values() if e["Type"] == "ScheduleV2"
    ]
    sample = json.loads((ROOT / "events" / "scheduler_scheduled.json").read_text())

    assert "FunctionUrlConfig" not in scheduler
    assert schedule["ScheduleExpression"] == {"Ref": "SchedulerSchedule"}
    assert template["Parameters"]["SchedulerSchedule"]["Default"] == "rate(1 minute)"
    assert scheduler["Environment"]["Variables"]["SCHEDULE_GRACE"] == {"Ref": "ScheduleGrace"}
    assert json.loads(schedule["Input"]) == sample


def test_the_delivery_worker_is_kicked_by_the_functions_and_sweeps_every_minute(
    template: dict[str, Any],
) -> None:
    import json

    functions = _functions(template)
    delivery = functions["delivery"]
    name = {"Fn::Sub": "${AWS::StackName}-delivery"}
    [schedule] = [e["Properties"] for e in delivery["Events"].values() if e["Type"] == "ScheduleV2"]
    sample = json.loads((ROOT / "events" / "delivery_scheduled.json").read_text())
    assert "FunctionUrlConfig" not in delivery and delivery["FunctionName"] == name
    assert json.loads(schedule["Input"]) == sample
    assert template["Parameters"]["DeliverySchedule"]["Default"] == "rate(1 minute)"
    assert delivery["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    invoke = {"LambdaInvokePolicy": {"FunctionName": name}}
    for folder in ("start_session", "status", "send_message", "disconnect", "qr_webhook",
                   "api_keys", "scheduler", "reconcile"):  # fmt: skip
        assert functions[folder]["Environment"]["Variables"]["DELIVERY_FUNCTION"] == name
        assert invoke in functions[folder]["Policies"], folder
    assert functions["api_keys"]["FunctionUrlConfig"]["Cors"]["AllowMethods"] == [
        "GET",
        "POST",
        "DELETE",
    ]


def test_the_media_function_runs_every_minute_and_the_functions_that_store_files_start_it(
    template: dict[str, Any],
) -> None:
    import json

    fns = _functions(template)
    media = fns["media"]
    [schedule] = [e["Properties"] for e in media["Events"].values() if e["Type"] == "ScheduleV2"]
    sample = json.loads((ROOT / "events" / "media_scheduled.json").read_text())

    assert "FunctionUrlConfig" not in media
    assert schedule["ScheduleExpression"] == {"Ref": "MediaSchedule"}
    assert template["Parameters"]["MediaSchedule"]["Default"] == "rate(1 minute)"
    assert json.loads(schedule["Input"]) == sample
    assert media["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    name = {"Fn::Sub": "${AWS::StackName}-media"}
    assert media["FunctionName"] == name
    for folder in ("qr_webhook", "reconcile", "status"):
        fn = fns[folder]
        assert fn["Environment"]["Variables"]["MEDIA_FUNCTION"] == name, folder
        assert {"LambdaInvokePolicy": {"FunctionName": name}} in fn["Policies"], folder


# What each parameter is set to in the deployment the next test imagines: every required one
# given, every optional one left empty (its default).
DEPLOYED = {
    "SupabaseUrl": "https://abcd1234.supabase.co",
    "WppServerUrl": "https://wpp.example.com",
    "SecretsArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wa-gateway-AbCdEf",
    "SupabasePublishableKey": "sb_publishable_" + "p" * 24,
    "AllowedOrigins": ["https://app.example.com"],
    "AWS::StackName": "wa-gateway",
}
# The secret as deploying.md has it written (DATABASE_URL left out: the REST API is used).
SECRET = {
    "SUPABASE_SERVICE_ROLE_KEY": "sb_secret_" + "s" * 32,
    "SUPABASE_JWT_SECRET": "j" * 40,
    "WPP_SECRET_KEY": "wpp-secret-" + "w" * 32,
    "QR_WEBHOOK_VERIFY_TOKEN": "verify-token",
    "ENCRYPTION_KEY": "a" * 64,
}


def _deployed(template: dict[str, Any], value: Any) -> Any:
    """A template value as CloudFormation resolves it in that deployment (None: no value)."""
    if isinstance(value, str | int | float):
        return value
    if "Ref" in value:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        return DEPLOYED.get(name, template["Parameters"].get(name, {}).get("Default"))
    if "Fn::If" in value:
        condition, then, otherwise = value["Fn::If"]
        chosen = then if _deployed(template, template["Conditions"][condition]) else otherwise
        return _deployed(template, chosen)
    if "Fn::Not" in value:
        return not _deployed(template, value["Fn::Not"][0])
    if "Fn::Equals" in value:
        left, right = (_deployed(template, side) for side in value["Fn::Equals"])
        return left == right
    if "Fn::GetAtt" in value:
        return f"https://{value['Fn::GetAtt'][0].lower()}.lambda-url.eu-west-1.on.aws/"
    if "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        return separator.join(_deployed(template, items))
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(
            r"\$\{([^}]+)\}", lambda m: str(_deployed(template, {"Ref": m[1]})), value["Fn::Sub"]
        )
    raise AssertionError(f"cannot resolve {value}")


def _needs(handler_dir: str) -> list[str]:
    """The ``needs`` its handler module gives its app (FunctionApp or JobApp)."""
    tree = ast.parse((ROOT / "functions" / handler_dir / "app.py").read_text())
    [needs] = [
        keyword.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "needs"
    ]
    return list(ast.literal_eval(needs))


@pytest.mark.parametrize("handler_dir", sorted(HANDLER_DIRS))
def test_every_function_deployed_has_what_it_needs_to_start(
    template: dict[str, Any], handler_dir: str
) -> None:
    """The settings a function checks at start-up, from the template's environment and the
    secret: a function the template leaves without one stops at its first cold start."""
    variables = _functions(template)[handler_dir]["Environment"]["Variables"]
    env = {name: _deployed(template, value) for name, value in variables.items()}
    env = {name: str(value) for name, value in env.items() if value is not None}

    settings = Settings.load(env, fetch_secrets=lambda arn: SECRET)

    require(settings, _needs(handler_dir))  # type: ignore[arg-type]
