"""``nvcf-helpers deploy``: deploy, show, scale and undeploy function versions, as ``ngc cf``.

``--wait`` follows the version's status on stderr until it is ACTIVE; ERROR or
DEGRADED ends the command with the reason NVCF gives and exit status 1.
Works against ``nvcf-helpers local`` (the default base URL) and NVCF itself.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from nvcf_helpers.client.api import NvcfClient, NvcfClientError
from nvcf_helpers.client.arguments import (
    add_management_arguments,
    client_for,
    positive_seconds,
    whole_number,
)
from nvcf_helpers.client.display import (
    deployment_fields,
    print_fields,
    print_json,
    status_line,
    version_fields,
)
from nvcf_helpers.errors import InvalidInputError

__all__ = ["DEFAULT_WAIT_SECONDS", "add_arguments", "run"]

#: How long ``--wait`` waits by default: NVCF allows a deployment up to 2 hours.
DEFAULT_WAIT_SECONDS = 7200.0


def _add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("function_id", metavar="FUNCTION_ID", help="the function")
    parser.add_argument("version_id", metavar="VERSION_ID", help="the version")


def _add_specification(parser: argparse.ArgumentParser, creating: bool) -> None:
    """The options of one deployment specification, and ``--wait``."""
    keep = "default: as deployed"
    parser.add_argument(
        "--gpu",
        help="GPU type (default: the first the API supports)"
        if creating
        else "the specification to change, by GPU type (default: the only one)",
    )
    parser.add_argument(
        "--instance-type",
        metavar="TYPE",
        help="instance type (default: the GPU type, as the local NVCF takes it)"
        if creating
        else f"instance type ({keep})",
    )
    parser.add_argument(
        "--backend",
        help=f"cluster backend, e.g. GFN or OCI ({'default: NVCF picks' if creating else keep})",
    )
    parser.add_argument(
        "--min-instances",
        type=whole_number(0),
        metavar="N",
        help=f"instances kept running ({'default 1' if creating else keep})",
    )
    parser.add_argument(
        "--max-instances",
        type=whole_number(1),
        metavar="N",
        help="most instances (default: --min-instances, at least 1)"
        if creating
        else "most instances (default: as deployed, raised to --min-instances)",
    )
    parser.add_argument(
        "--max-request-concurrency",
        type=whole_number(1),
        metavar="N",
        help=f"requests each instance takes at once ({'default 1' if creating else keep})",
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the status until ACTIVE; exit 1 on a failure"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long --wait waits (default {DEFAULT_WAIT_SECONDS:g}, NVCF's limit)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the actions of ``nvcf-helpers deploy``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    phrases = {
        "create": "deploy a version: start its instances",
        "info": "show a version's deployment",
        "update": "change a deployment: instances, concurrency",
        "remove": "undeploy a version: stop its instances",
    }
    for name, phrase in phrases.items():
        action = actions.add_parser(name, help=phrase, description=phrase)
        _add_version(action)
        if name in ("create", "update"):
            _add_specification(action, creating=name == "create")
        add_management_arguments(action)


def _first_gpu(client: NvcfClient) -> str:
    gpus = client.supported_gpus()
    if not gpus:
        raise NvcfClientError(
            f"{client.base_url} lists no supported GPUs (GET /v2/nvcf/supportedGpus): "
            "give --gpu and --instance-type"
        )
    return gpus[0]


def _create(args: argparse.Namespace) -> int:
    client = client_for(args)
    gpu = args.gpu or _first_gpu(client)
    minimum = 1 if args.min_instances is None else args.min_instances
    spec: dict[str, Any] = {
        "gpu": gpu,
        "instanceType": args.instance_type or gpu,
        "minInstances": minimum,
        "maxInstances": max(minimum, 1) if args.max_instances is None else args.max_instances,
        "maxRequestConcurrency": args.max_request_concurrency or 1,
    }
    if args.backend:
        spec["backend"] = args.backend
    deployment = client.create_deployment(args.function_id, args.version_id, [spec])
    return _finish(client, args, deployment)


# The options of ``deploy update``, and the specification's field each one changes.
_CHANGES = (
    ("instance_type", "instanceType"),
    ("backend", "backend"),
    ("min_instances", "minInstances"),
    ("max_instances", "maxInstances"),
    ("max_request_concurrency", "maxRequestConcurrency"),
)


def _changed(spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``spec`` with the options given on the command line."""
    changed = dict(spec)
    for option, key in _CHANGES:
        if getattr(args, option) is not None:
            changed[key] = getattr(args, option)
    if args.max_instances is None and args.min_instances is not None:
        deployed = changed.get("maxInstances")
        changed["maxInstances"] = max(
            args.min_instances, deployed if isinstance(deployed, int) else 1
        )
    return changed


def _update(args: argparse.Namespace) -> int:
    if all(getattr(args, option) is None for option, _ in _CHANGES):
        raise InvalidInputError(
            "nothing to change: give --min-instances, --max-instances, "
            "--max-request-concurrency, --instance-type or --backend"
        )
    client = client_for(args)
    current = client.get_deployment(args.function_id, args.version_id)
    specs = [dict(s) for s in current.get("deploymentSpecifications") or [] if isinstance(s, dict)]
    chosen = [i for i, s in enumerate(specs) if args.gpu in (None, s.get("gpu"))]
    if len(chosen) != 1:
        gpus = ", ".join(str(s.get("gpu")) for s in specs) or "none"
        if not args.gpu:
            which = "say which with --gpu"
        elif chosen:
            which = f"{len(chosen)} are for GPU {args.gpu}: change them through the API (PUT)"
        else:
            which = f"none is for GPU {args.gpu}"
        raise InvalidInputError(
            f"the deployment has {len(specs)} specification(s), for GPU(s) {gpus}: {which}"
        )
    specs[chosen[0]] = _changed(specs[chosen[0]], args)
    deployment = client.update_deployment(args.function_id, args.version_id, specs)
    return _finish(client, args, deployment)


def _finish(client: NvcfClient, args: argparse.Namespace, deployment: dict[str, Any]) -> int:
    """Wait if asked, then show the deployment."""
    if args.wait:
        started = time.monotonic()
        client.wait_for_deployment(
            args.function_id,
            args.version_id,
            timeout=args.timeout,
            on_status=lambda version: status_line(version, time.monotonic() - started),
        )
        deployment = client.get_deployment(args.function_id, args.version_id)
    _show(args, deployment)
    return 0


def _show(args: argparse.Namespace, deployment: dict[str, Any]) -> None:
    if args.json:
        print_json({"deployment": deployment})
    else:
        print_fields(deployment_fields(deployment))


def _info(args: argparse.Namespace) -> int:
    _show(args, client_for(args).get_deployment(args.function_id, args.version_id))
    return 0


def _remove(args: argparse.Namespace) -> int:
    version = client_for(args).delete_deployment(args.function_id, args.version_id)
    if args.json:
        print_json({"function": version})
    else:
        print_fields(version_fields(version))
    return 0


_ACTIONS = {"create": _create, "info": _info, "update": _update, "remove": _remove}


def run(args: argparse.Namespace) -> int:
    """Run one action of ``nvcf-helpers deploy``."""
    return _ACTIONS[args.action](args)
