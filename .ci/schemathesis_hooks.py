"""Schemathesis hooks for the API fuzzing step of .ci/run.

POST /v1/install writes packages under its `to`, POST /v1/remove deletes trees under its `to`,
POST /v1/verify extracts archives beside the trees under its `to`, and POST /v1/publish reads
the directory its `path` names. Fuzzed values are paths on the CI machine, so before any request goes out this
hook moves every absolute path it finds there into the run's scratch directory
($PEERPACK_FUZZ_SANDBOX): `/etc/../x/./y` becomes `$PEERPACK_FUZZ_SANDBOX/x/y`. The shape of a
path is kept (odd characters, depth, a trailing slash is dropped); only where it points changes.
Relative paths and values that are not strings go out unchanged: the node refuses them before it
touches the disk. Without the variable the hook fails to load, and so does the run.
"""

import os

import schemathesis

SANDBOX = os.environ["PEERPACK_FUZZ_SANDBOX"]
if not os.path.isabs(SANDBOX) or os.path.realpath(SANDBOX) != SANDBOX.rstrip("/"):
    raise RuntimeError(f"PEERPACK_FUZZ_SANDBOX must be an absolute, resolved path: {SANDBOX!r}")

# The endpoints that take a path on this machine, and the body field that holds it. Matched
# on the path alone, whatever the method, so that no request to them escapes the rewrite.
PATH_FIELDS = {
    "/v1/install": "to",
    "/v1/remove": "to",
    "/v1/verify": "to",
    "/v1/publish": "path",
}


def confine(value):
    """An absolute path moved under SANDBOX with no way out; anything else as it is."""
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    parts = [p for p in value.split("/") if p not in ("", ".", "..")]
    return "/".join([SANDBOX, *parts])


@schemathesis.hook
def before_call(context, case, kwargs):
    field = PATH_FIELDS.get(case.operation.path)
    if field is None:
        return
    if isinstance(case.body, dict) and field in case.body:
        case.body[field] = confine(case.body[field])
