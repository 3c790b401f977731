"""Secrets and trust in the Terraform, checked statically (decision 0016).

- No sign-in secret is in the HCL or can reach the state: no SSM parameter with a value, no
  secret read back by a data source, no generated password but the origin secret, no variable
  holding a secret written into a resource; the functions get parameter names, never values.
- The origin secret is the one secret in the state (CloudFront's configuration holds it whoever
  makes it): CloudFront sends it under the header the code checks to both function URLs, the
  functions hold only its digests, and they accept the generations on both sides of a rotation,
  so a rotation never refuses an edge whatever order the apply takes.
- The one parameter Terraform writes is the dashboard's public URL: a String, no secret.
- The dependency graph has no cycle (terraform cannot run here to say so), and the functions do
  not depend on the distribution in front of their URLs.
- Terraform's state, plans and variable files stay out of git; its lock file does not.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from core import edge, settings
from tests.infra import terraform as tf

RESOURCE_REF = re.compile(r"(?<![\w.])((?:aws|random)_[a-z0-9_]+)\.([a-z0-9_]+)\b")
DATA_REF = re.compile(r"\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)\b")
LOCAL_REF = re.compile(r"\blocal\.([a-z0-9_]+)\b")
VAR_REF = re.compile(r"\bvar\.([a-z0-9_]+)\b")
GENERATORS = ("random_password", "random_string", "random_bytes", "tls_private_key")
SECRET_NAME = re.compile(r"(password|secret|token|private_key|signing_key)(_hash)?$")


def text(value: Any) -> str:
    return json.dumps(value)


# ---- no secret in the HCL or the state -------------------------------------------------------


def test_no_ssm_parameter_or_secret_version_is_written_by_terraform() -> None:
    resources = tf.blocks("resource")
    for address, body in resources.items():
        kind = address.split(".")[0]
        assert kind != "aws_secretsmanager_secret_version", address
        if kind == "aws_ssm_parameter" and address != "aws_ssm_parameter.public_url":
            assert not {"value", "insecure_value"} & set(body), f"{address} puts a value in state"


def test_the_one_parameter_terraform_writes_is_the_public_url_not_a_secret() -> None:
    # Decision 0023: the distribution's domain, which the query function cannot be given in its
    # environment (the distribution names its URL), in a String parameter
    parameter = tf.resource("aws_ssm_parameter.public_url")
    assert parameter["type"] == "String"
    assert parameter["value"] == "https://${local.public_host}"
    assert parameter["name"] == "${local.public_url_parameter}"
    assert tf.locals_()["public_url_parameter"].startswith(
        "/${var.project_name}/${var.environment}/"
    )
    assert "secret" not in text(parameter) and "random_password" not in text(parameter)


def test_no_secret_is_read_back_into_the_state() -> None:
    # A data source's result is stored in the state: reading a parameter would copy its value there.
    for address in tf.blocks("data"):
        assert not address.startswith(("aws_ssm_parameter", "aws_secretsmanager_secret")), address


def test_the_sign_in_parameters_are_only_named() -> None:
    parameters = tf.locals_()["secret_parameters"]
    assert set(parameters) == {"session_signing_key", "admin_password_hash"}
    for name in parameters.values():
        assert name.startswith("/${var.project_name}/${var.environment}/"), name
    query = tf.locals_()["functions"]["query"]["environment"]
    assert query["LIVEINSIGHT_ADMIN_PASSWORD_HASH_PARAMETER"] == (
        "${local.secret_parameters.admin_password_hash}"
    )
    assert query["LIVEINSIGHT_SESSION_SECRET_PARAMETER"] == (
        "${local.secret_parameters.session_signing_key}"
    )
    # And no function gets a secret's value in its environment
    for function in tf.locals_()["functions"].values():
        assert not {
            "LIVEINSIGHT_ADMIN_PASSWORD_HASH",
            "LIVEINSIGHT_SESSION_SECRET",
        } & set(function["environment"])


def test_parameters_made_by_older_deployments_are_forgotten_not_destroyed() -> None:
    removed = [b for doc in tf.parsed_files().values() for b in doc.get("removed", [])]
    forgotten = {b["from"]: b["lifecycle"][0]["destroy"] for b in removed}
    assert forgotten == {
        "${aws_ssm_parameter.session_signing_key}": False,
        "${aws_ssm_parameter.admin_password_hash}": False,
    }


def test_the_only_generated_secret_is_the_origin_secret_and_it_goes_only_where_it_must() -> None:
    # Given every generated secret
    generated = [a for a in tf.blocks("resource") if a.startswith(GENERATORS)]
    assert generated == ["random_password.origin_secret"]
    # Then it is used in two locals only: the secret CloudFront sends, and the functions' digests
    users = {
        name
        for name, value in tf.locals_().items()
        if "random_password.origin_secret" in text(value)
    }
    assert users == {"origin_secret", "origin_secret_digests"}
    assert tf.locals_()["origin_secret_digests"].count("sha256(random_password.origin_secret[") == 1
    # And no resource, data source or output names it or the raw secret but CloudFront's origin
    for kind in ("resource", "data"):
        for address, body in tf.blocks(kind).items():
            body_text = text(body)
            assert "random_password.origin_secret" not in body_text or address == (
                "random_password.origin_secret"
            )
            if "local.origin_secret}" in body_text or "local.origin_secret " in body_text:
                assert address == "aws_cloudfront_distribution.this", address
    for name, output in tf.outputs().items():
        assert "origin_secret" not in text(output), name


def test_no_secret_variable_is_written_into_a_resource() -> None:
    secret_variables = {
        name
        for name, spec in tf.variables().items()
        if spec.get("sensitive") is True or SECRET_NAME.search(name)
    }
    for kind in ("resource", "data"):
        for address, body in tf.blocks(kind).items():
            used = set(VAR_REF.findall(text(body)))
            assert not used & secret_variables, f"{address} writes {used & secret_variables}"
    for name, value in tf.locals_().items():
        used = set(VAR_REF.findall(text(value)))
        assert not used & secret_variables, f"local.{name} carries {used & secret_variables}"


def test_no_secret_literal_is_in_the_hcl() -> None:
    source = tf.all_text()
    assert "scrypt$" not in source
    assert "PRIVATE KEY" not in source
    # A string literal that looks generated: 32+ token characters mixing cases and digits
    for literal in re.findall(r'"([A-Za-z0-9+/=_-]{32,})"', source):
        mixed = all(re.search(p, literal) for p in ("[a-z]", "[A-Z]", "[0-9]"))
        assert not mixed, f"a secret-looking literal in the HCL: {literal[:6]}…"


# ---- the origin secret ---------------------------------------------------------------------------


def function_origins() -> dict[str, dict[str, Any]]:
    distribution = tf.resource("aws_cloudfront_distribution.this")
    return {o["origin_id"]: o for o in distribution["origin"] if "custom_origin_config" in o}


def test_cloudfront_sends_the_origin_secret_under_the_header_the_code_checks() -> None:
    # Given both function URLs, CloudFront's origins for /api/* (decision 0023)
    origins = function_origins()
    assert set(origins) == {"ingest", "query"}
    for origin in origins.values():
        (header,) = origin["custom_header"]
        assert header["name"].lower() == edge.ORIGIN_HEADER
        assert header["value"] == "${local.origin_secret}"
    assert tf.locals_()["origin_secret"] == (
        "${random_password.origin_secret[tostring(var.origin_secret_generation)].result}"
    )
    secret = tf.resource("random_password.origin_secret")
    assert secret["length"] >= 32


def test_the_functions_that_read_cloudfront_headers_accept_its_digests() -> None:
    functions = tf.locals_()["functions"]
    for name in ("ingest", "query"):
        env = functions[name]["environment"]
        assert env["LIVEINSIGHT_ORIGIN_SECRET_SHA256"] == "${local.origin_secret_digests}", name
    assert "LIVEINSIGHT_ORIGIN_SECRET_SHA256" not in functions["aggregator"]["environment"]
    # The setting both functions read it into
    for cls in (settings.IngestSettings, settings.QuerySettings):
        assert "origin_secret_sha256" in {f.name for f in cls.__dataclass_fields__.values()}


def generations_accepted(sent: int) -> set[int]:
    """The generations the functions accept while CloudFront is configured to send `sent`, as
    random_password.origin_secret's for_each lists them."""
    expression = tf.resource("random_password.origin_secret")["for_each"]
    offsets = re.findall(r"tostring\(var\.origin_secret_generation(?: ([+-]) (\d+))?\)", expression)
    assert offsets, expression
    return {sent + (int(n) if sign == "+" else -int(n) if sign else 0) for sign, n in offsets}


@pytest.mark.parametrize("generation", [1, 2, 7])
def test_a_rotation_is_accepted_whichever_of_cloudfront_and_the_functions_changes_first(
    generation: int,
) -> None:
    # Given CloudFront sending `generation` and the functions accepting its neighbours
    before = generations_accepted(generation)
    # When origin_secret_generation is raised by one, and the apply updates the distribution and
    # the functions in either order (neither waits for the other: decision 0023)
    after = generations_accepted(generation + 1)
    # Then what any edge sends, the old generation or the new, is accepted before and after
    for sent in (generation, generation + 1):
        assert sent in before and sent in after, (sent, before, after)
    # And CloudFront sends the configured generation
    assert tf.locals_()["origin_secret"] == (
        "${random_password.origin_secret[tostring(var.origin_secret_generation)].result}"
    )


def test_the_function_urls_are_public_and_invocable_only_through_a_function_url() -> None:
    # Auth type NONE (origin access control would need viewers to sign POST bodies), with the two
    # statements a public URL needs since October 2025; the InvokeFunction grant to anyone holds
    # only through a function URL, or anyone could invoke the functions with made-up events
    url = tf.resource("aws_lambda_function_url.this")
    assert url["authorization_type"] == "NONE"
    assert url["for_each"] == '${toset(["ingest", "query"])}'
    assert "cors" not in url  # a preflight reaches ingest, which answers it
    invoke_url = tf.resource("aws_lambda_permission.function_url")
    assert invoke_url["action"] == "lambda:InvokeFunctionUrl"
    assert invoke_url["function_url_auth_type"] == "NONE"
    invoke = tf.resource("aws_lambda_permission.invoked_via_function_url")
    assert invoke["action"] == "lambda:InvokeFunction"
    assert invoke["invoked_via_function_url"] is True
    for permission in (invoke_url, invoke):
        assert permission["principal"] == "*"
        assert permission["for_each"] == "${aws_lambda_function_url.this}"
        assert permission["function_name"] == "${each.value.function_name}"
    permissions = [a for a in tf.blocks("resource") if a.startswith("aws_lambda_permission.")]
    assert sorted(permissions) == [
        "aws_lambda_permission.compaction_schedule",
        "aws_lambda_permission.function_url",
        "aws_lambda_permission.import_requests",
        "aws_lambda_permission.invoked_via_function_url",
        "aws_lambda_permission.reports_schedule",
    ]
    # The one other grant: EventBridge's hourly rule may invoke the archive function, nothing else
    schedule = tf.resource("aws_lambda_permission.compaction_schedule")
    assert schedule["principal"] == "events.amazonaws.com"
    assert schedule["function_name"] == '${aws_lambda_function.this["archive"].function_name}'
    assert schedule["source_arn"] == "${aws_cloudwatch_event_rule.compaction.arn}"
    # and S3 may invoke it for the archive bucket's import requests (decision 0039), only from
    # this account's bucket
    requests = tf.resource("aws_lambda_permission.import_requests")
    assert requests["principal"] == "s3.amazonaws.com"
    assert requests["function_name"] == '${aws_lambda_function.this["archive"].function_name}'
    assert requests["source_arn"] == "${aws_s3_bucket.archive.arn}"
    assert requests["source_account"] == "${data.aws_caller_identity.current.account_id}"
    # and, with email on, the reports' hourly rule the reports function (decision 0038)
    reports = tf.resource("aws_lambda_permission.reports_schedule")
    assert reports["principal"] == "events.amazonaws.com"
    assert reports["function_name"] == '${aws_lambda_function.this["reports"].function_name}'
    assert reports["source_arn"] == "${aws_cloudwatch_event_rule.reports[0].arn}"


# ---- the dependency graph ------------------------------------------------------------------------


def dependency_graph() -> dict[str, set[str]]:
    """Resource, data source and local → what its expressions (and depends_on) reference."""
    nodes: dict[str, Any] = {}
    for address, body in tf.blocks("resource").items():
        nodes[address] = body
    for address, body in tf.blocks("data").items():
        nodes[f"data.{address}"] = body
    for name, value in tf.locals_().items():
        nodes[f"local.{name}"] = value
    graph: dict[str, set[str]] = {}
    for node, body in nodes.items():
        body_text = text(body)
        found = {f"data.{t}.{n}" for t, n in DATA_REF.findall(body_text)}
        without_data = DATA_REF.sub("", body_text)
        found |= {f"{t}.{n}" for t, n in RESOURCE_REF.findall(without_data)}
        found |= {f"local.{n}" for n in LOCAL_REF.findall(body_text)}
        graph[node] = {f for f in found if f in nodes and f != node}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph[stack.pop()] - seen:
            seen.add(target)
            stack.append(target)
    return seen


def test_the_terraform_has_no_dependency_cycle() -> None:
    graph = dependency_graph()
    # CloudFront's origins name the function URLs, which name the functions
    assert "local.function_url_hosts" in graph["aws_cloudfront_distribution.this"]
    assert "aws_lambda_function.this" in reachable(graph, "aws_cloudfront_distribution.this")
    assert find_cycle(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


# ---- git ------------------------------------------------------------------------------------------


def ignored(path: str) -> bool:
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=tf.REPO, check=False
    )
    assert done.returncode in (0, 1), f"git check-ignore failed on {path}"
    return done.returncode == 0


@pytest.mark.parametrize(
    "path",
    [
        "terraform/terraform.tfstate",
        "terraform/terraform.tfstate.backup",
        "terraform/terraform.tfstate.1765000000.backup",
        "terraform/.terraform/providers/registry.terraform.io/hashicorp/aws/x",
        "terraform/.terraform/terraform.tfstate",
        "terraform/prod.tfvars",
        "terraform/prod.tfvars.json",
        "terraform/plan.tfplan",
        "terraform/crash.log",
        "terraform/override.tf",
        "terraform/local_override.tf",
    ],
)
def test_terraform_state_plans_and_variables_are_never_committed(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path",
    ["terraform/.terraform.lock.hcl", "terraform/main.tf", "terraform/prod.tfvars.example"],
)
def test_the_provider_lock_file_and_the_configuration_are_committed(path: str) -> None:
    # The lock file pins the providers' checksums: every apply must use the same ones.
    assert not ignored(path)


def test_the_functions_do_not_depend_on_the_distribution_in_front_of_them() -> None:
    # Decision 0023, prerequisite 2: the rotation's depends_on and the query function's public
    # URL were the two edges from the functions to the distribution; with the function URLs as
    # its origins either would be a cycle. The public URL reaches the function through SSM.
    graph = dependency_graph()
    for node in ("aws_lambda_function.this", "aws_iam_role_policy.lambda"):
        assert "aws_cloudfront_distribution.this" not in reachable(graph, node), node
    assert "local.public_host" in graph["aws_ssm_parameter.public_url"]
