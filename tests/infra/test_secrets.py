"""Secrets and trust in the Terraform, checked statically (decision 0016).

- No sign-in secret is in the HCL or can reach the state: no SSM parameter with a value, no
  secret read back by a data source, no generated password but the origin secret, no variable
  holding a secret written into a resource; the functions get parameter names, never values.
- The origin secret is the one secret in the state (CloudFront's configuration holds it whoever
  makes it): CloudFront sends it under the header the code checks, the functions hold only its
  digests, and they are updated after the distribution, so a rotation never refuses an edge.
- With a custom domain for the API origin, the execute-api endpoint is off.
- The dependency graph has no cycle (terraform cannot run here to say so).
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
        if kind == "aws_ssm_parameter":
            assert not {"value", "insecure_value"} & set(body), f"{address} puts a value in state"


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


def api_origin() -> dict[str, Any]:
    distribution = tf.resource("aws_cloudfront_distribution.this")
    (origin,) = [o for o in distribution["origin"] if o["origin_id"] == "api"]
    return origin


def test_cloudfront_sends_the_origin_secret_under_the_header_the_code_checks() -> None:
    (header,) = api_origin()["custom_header"]
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


def test_a_rotation_keeps_the_next_generation_accepted_before_cloudfront_sends_it() -> None:
    # Two generations exist: the one CloudFront sends, and the next, both accepted
    assert tf.resource("random_password.origin_secret")["for_each"] == (
        "${toset([tostring(var.origin_secret_generation), "
        "tostring(var.origin_secret_generation + 1)])}"
    )
    # And the functions change after the distribution: they drop a generation only once every
    # edge location sends the next
    depends = tf.resource("aws_lambda_function.this")["depends_on"]
    assert "${aws_cloudfront_distribution.this}" in depends
    assert tf.resource("aws_cloudfront_distribution.this").get("wait_for_deployment", True)


def test_the_execute_api_endpoint_is_off_whenever_cloudfront_reaches_the_api_by_its_own_domain() -> (
    None
):
    api = tf.resource("aws_apigatewayv2_api.http")
    assert api["disable_execute_api_endpoint"] == "${local.api_origin_custom_domain}"
    assert tf.locals_()["api_origin_custom_domain"] == '${var.api_origin_domain != ""}'
    # And CloudFront's origin is that domain then (the default endpoint would answer it 403)
    assert api_origin()["domain_name"] == "${local.api_origin_host}"
    host = tf.locals_()["api_origin_host"]
    assert host.startswith(
        "${(local.api_origin_custom_domain ? aws_apigatewayv2_domain_name.origin[0].domain_name :"
    )
    domain = tf.resource("aws_apigatewayv2_domain_name.origin")
    assert domain["domain_name_configuration"][0]["security_policy"] == "TLS_1_2"


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


def test_the_terraform_has_no_dependency_cycle() -> None:
    graph = dependency_graph()
    assert "aws_cloudfront_distribution.this" in graph["aws_lambda_function.this"]
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


def test_function_url_origins_would_close_a_cycle_while_the_functions_depend_on_the_distribution() -> (
    None
):
    # Decision 0023, prerequisite 2: CloudFront's origins would name the function URLs, which
    # name the functions. Today the functions depend on the distribution (the rotation's
    # depends_on, and the query's public URL when there is no custom domain), so that would be a
    # cycle. When this test fails, both edges are gone and the switch can be built.
    graph = dependency_graph()
    graph["aws_lambda_function_url.this"] = {"aws_lambda_function.this"}
    graph["aws_cloudfront_distribution.this"] |= {"aws_lambda_function_url.this"}
    cycle = find_cycle(graph)
    assert {"aws_cloudfront_distribution.this", "aws_lambda_function.this"} <= set(cycle)
