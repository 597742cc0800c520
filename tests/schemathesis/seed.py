"""Seeds a running Clearance server through its API with real ids, so that
schemathesis reaches the deep paths, and writes the schemathesis
configuration that names them.

usage: seed.py BASE_URL TOKEN CONFIG_OUT HOOK_URL

HOOK_URL is a webhook receiver on this machine (run.sh starts one): the
server delivers to it, and to nothing off this machine.

CONFIG_OUT gets schemathesis.toml (beside this file) followed by the seeded
ids.

Creates two providers with a model each, a review of each model (its stages
open), a supplier invitation, a finding, a webhook and a role mailbox; reads
the workflows, stage keys and outbox messages back. The configuration binds
each path parameter to a dictionary of these ids, used for most generated
cases, so that the rest still try ids that name nothing (404).
"""
import json
import sys
import urllib.error
import urllib.request

BASE, TOKEN, OUT = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
    except urllib.error.HTTPError as error:
        sys.exit(f"seed: {method} {path} answered {error.code}: {error.read().decode()}")
    return json.loads(text) if text else None


providers, models, reviews, stages = [], [], [], set()
invitations, findings = [], []
for n, (slug, name) in enumerate([("acme", "Acme AI"), ("globex", "Globex")]):
    call("POST", "/v1/providers", {
        "slug": slug,
        "name": name,
        "website": f"https://{slug}.example",
        "contacts": [{"name": "Security desk", "email": f"security@{slug}.example"}],
    })
    model = f"{slug}-model-{n + 1}"
    call("POST", f"/v1/providers/{slug}/models", {
        "slug": model, "name": f"{name} model", "modality": "text",
    })
    providers.append(slug)
    models.append(model)
    review = call("POST", "/v1/reviews", {"provider": slug, "model": model})
    reviews.append(review["id"])
    keys = [stage["key"] for stage in review["stages"]]
    stages.update(keys)
    supplier = [s["key"] for s in review["stages"] if s["answered_by"] == "supplier"]
    invited = call("POST", f"/v1/reviews/{review['id']}/stages/{supplier[0]}/invite", {
        "email": f"security@{slug}.example", "expires_in": "14d",
    })
    invitations.append(invited["id"])
    found = call("POST", f"/v1/reviews/{review['id']}/findings", {
        "severity": "medium", "text": "Seeded finding", "stage": supplier[0],
    })
    findings.append(found["id"])

webhook = call("POST", "/v1/webhooks", {"url": sys.argv[4]})
call("PUT", "/v1/admin/roles/security_reviewer/mailbox", {"emails": ["sec@example.com"]})
workflows = [w["id"] for w in call("GET", "/v1/workflows")["items"]]
outbox = [m["id"] for m in call("GET", "/v1/admin/outbox")["items"]]

dictionaries = {
    "providers": providers,
    "models": models,
    "reviews": reviews,
    "stages": sorted(stages),
    "invitations": invitations,
    "findings": findings,
    "webhooks": [webhook["id"]],
    "workflows": workflows,
    "outbox": outbox or ["00000000-0000-0000-0000-000000000000"],
    "jobs": ["sla-sweep", "re-review-sweep", "digest", "outbox"],
    "roles": ["security_reviewer", "privacy_reviewer", "rai_reviewer", "approver",
              "vendor_manager", "admin", "integrator"],
}


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def bind(name, dictionary, probability=0.9):
    return f'"path.{name}" = {{ dictionary = "{dictionary}", probability = {probability} }}'


lines = ["# Written by tests/schemathesis/seed.py for one run; not kept.", ""]
lines.append("[dictionaries]")
for name, values in dictionaries.items():
    lines.append(f"{name} = {{ values = {toml_list(values)} }}")
lines.append("")
common = [bind(name, dictionary) for name, dictionary in [
    ("provider", "providers"), ("model", "models"), ("stage", "stages"),
    ("finding", "findings"), ("invitation", "invitations"), ("job", "jobs"), ("role", "roles")]]
lines.append("[parameters]")
lines += common
# `{id}` names a different thing under each prefix; an operation's own
# parameters replace the global ones, so each block repeats them.
for regex, dictionary in [("^/v1/reviews/", "reviews"), ("^/v1/webhooks/", "webhooks"),
                          ("^/v1/workflows/", "workflows"), ("^/v1/admin/outbox/", "outbox")]:
    bound = ", ".join(common + [bind("id", dictionary)])
    lines += ["", "[[operations]]", f'include-path-regex = "{regex}"', f"parameters = {{ {bound} }}"]
with open(__file__.replace("seed.py", "schemathesis.toml")) as fixed, open(OUT, "w") as out:
    out.write(fixed.read() + "\n" + "\n".join(lines) + "\n")
print(f"seeded {len(providers)} providers, {len(models)} models, {len(reviews)} reviews "
      f"({len(stages)} stage keys), {len(invitations)} invitations, {len(findings)} findings, "
      f"1 webhook, {len(outbox)} outbox messages")
