#!/usr/bin/env python3
"""Checks on rendered Helm output (a YAML stream from `helm template`) that schema
validation cannot make: the restricted Pod Security Standard on every pod spec, resource
requests and limits, no database URL or token outside a Secret, SQLite's single replica,
and the shape of a Gateway API HTTPRoute (kubernetes-validate has no schema for it).

Also compares the operator chart with the operator's own output (`rune operator rbac`,
`rune operator crd`) and the container args with the binary's `--help`.

Usage:
  chart_check.py pss FILE...                 every check on rendered manifests
  chart_check.py rbac RENDERED RBAC_OUTPUT   ClusterRole/Role rules equal the operator's
  chart_check.py crd CHART_CRD_DIR CRD_OUTPUT   chart CRDs equal `rune operator crd`
  chart_check.py env RENDERED DEPLOYMENT HELP   every RUNE_* env / --flag of the container is in HELP
  chart_check.py selftest                    the checks reject known-bad manifests
Exit 0 when all pass, 1 when one fails (each failure printed with the object and field).
"""
import json
import re
import sys

import yaml

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_spec(obj):
    kind = obj.get("kind")
    if kind == "Pod":
        return obj.get("spec") or {}
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"].get("spec") or {}
    if kind in POD_KINDS:
        return obj["spec"]["template"].get("spec") or {}
    return None


def name_of(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def check_pod(obj, spec):
    """Restricted PSS (v1.27+ rules) plus resources, for one pod spec."""
    errs = []
    who = name_of(obj)
    psc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            errs.append(f"{who}: spec.{field} must not be true")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            errs.append(f"{who}: volume {vol.get('name')} uses hostPath")
    containers = [("containers", c) for c in spec.get("containers") or []]
    containers += [("initContainers", c) for c in spec.get("initContainers") or []]
    if not containers:
        errs.append(f"{who}: no containers")
    for where, c in containers:
        cn = f"{who} {where}[{c.get('name')}]"
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            errs.append(f"{cn}: runAsNonRoot must be true (pod or container securityContext)")
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if uid == 0:
            errs.append(f"{cn}: runAsUser must not be 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            errs.append(f"{cn}: securityContext.allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            errs.append(f"{cn}: securityContext.privileged must not be true")
        if sc.get("readOnlyRootFilesystem") is not True:
            errs.append(f"{cn}: securityContext.readOnlyRootFilesystem must be true")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            errs.append(f"{cn}: securityContext.capabilities.drop must contain ALL")
        added = [a for a in caps.get("add") or [] if a != "NET_BIND_SERVICE"]
        if added:
            errs.append(f"{cn}: capabilities.add {added} not allowed by restricted PSS")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errs.append(f"{cn}: seccompProfile.type must be RuntimeDefault (pod or container)")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for key in ("cpu", "memory"):
                if not (res.get(part) or {}).get(key):
                    errs.append(f"{cn}: resources.{part}.{key} must be set")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                errs.append(f"{cn}: hostPort not allowed")
        for env in c.get("env") or []:
            if env.get("name") in ("RUNE_DATABASE_URL", "RUNE_API_TOKENS", "RUNE_API_TOKEN") and "value" in env:
                if not str(env["value"]).startswith("sqlite://"):
                    errs.append(f"{cn}: {env['name']} must come from a Secret (valueFrom.secretKeyRef), not a literal")
    return errs


def check_objects(docs):
    errs = []
    for obj in docs:
        kind = obj.get("kind")
        spec = pod_spec(obj)
        if spec is not None:
            errs += check_pod(obj, spec)
        if kind == "ConfigMap":
            for k, v in (obj.get("data") or {}).items():
                if "DATABASE_URL" in k or "TOKEN" in k or re.search(r"postgres(ql)?://[^:@/]+:[^@/]+@", str(v)):
                    errs.append(f"{name_of(obj)}: data.{k} holds a secret; use a Secret")
        if kind == "Deployment":
            tpl = obj["spec"]["template"]["spec"]
            sqlite = any(
                e.get("name") == "RUNE_DATABASE_URL" and str(e.get("value", "")).startswith("sqlite:")
                for c in tpl.get("containers") or []
                for e in c.get("env") or []
            )
            if sqlite:
                if obj["spec"].get("replicas", 1) != 1:
                    errs.append(f"{name_of(obj)}: SQLite needs exactly 1 replica")
                if (obj["spec"].get("strategy") or {}).get("type") != "Recreate":
                    errs.append(f"{name_of(obj)}: SQLite needs strategy Recreate")
                mounts = [m.get("mountPath") for c in tpl["containers"] for m in c.get("volumeMounts") or []]
                if "/data" not in mounts:
                    errs.append(f"{name_of(obj)}: SQLite database /data/jobs.db but nothing is mounted at /data")
        if kind == "HTTPRoute":
            s = obj.get("spec") or {}
            if obj.get("apiVersion") != "gateway.networking.k8s.io/v1":
                errs.append(f"{name_of(obj)}: apiVersion must be gateway.networking.k8s.io/v1")
            if not s.get("parentRefs") or not all(isinstance(p, dict) and p.get("name") for p in s["parentRefs"]):
                errs.append(f"{name_of(obj)}: spec.parentRefs need a name each")
            for rule in s.get("rules") or []:
                for b in rule.get("backendRefs") or []:
                    if not b.get("name") or not isinstance(b.get("port"), int):
                        errs.append(f"{name_of(obj)}: backendRefs need name and an integer port")
            allowed = {"parentRefs", "hostnames", "rules"}
            extra = set(s) - allowed
            if extra:
                errs.append(f"{name_of(obj)}: unknown spec fields {sorted(extra)}")
    return errs


def norm_rules(rules):
    """A rule set as a sorted list of (groups, resources, names, verbs) tuples, one per
    (group, resource) so that splitting or merging rules does not count as a difference."""
    out = set()
    for r in rules or []:
        for g in r.get("apiGroups") or [""]:
            for res in r.get("resources") or []:
                out.add((g, res, tuple(sorted(r.get("resourceNames") or [])), tuple(sorted(r.get("verbs") or []))))
        for url in r.get("nonResourceURLs") or []:
            out.add(("<url>", url, (), tuple(sorted(r.get("verbs") or []))))
    return out


def rules_by_kind(docs):
    by = {"ClusterRole": set(), "Role": set()}
    for d in docs:
        if isinstance(d, list):
            by["ClusterRole"] |= norm_rules(d)
        elif isinstance(d, dict) and d.get("kind") in by:
            by[d["kind"]] |= norm_rules(d.get("rules"))
        elif isinstance(d, dict) and "rules" in d:
            by["ClusterRole"] |= norm_rules(d["rules"])
    return by


def check_rbac(rendered, operator_out):
    chart = rules_by_kind(rendered)
    ours = rules_by_kind(operator_out)
    errs = []
    if not any(g == "bench.rune.ai" for g, *_ in chart["ClusterRole"]):
        errs.append("operator ClusterRole grants nothing on bench.rune.ai")
    if not ours["ClusterRole"] and not ours["Role"]:
        return errs + ["`rune operator rbac` printed no rules"]
    if ours["Role"] or any(d.get("kind") == "Role" for d in operator_out if isinstance(d, dict)):
        pairs = [("ClusterRole", chart["ClusterRole"], ours["ClusterRole"]), ("Role", chart["Role"], ours["Role"])]
    else:
        # The operator prints one rule list: compare it with everything the chart grants.
        pairs = [("ClusterRole+Role", chart["ClusterRole"] | chart["Role"], ours["ClusterRole"])]
    for what, c, o in pairs:
        for extra in sorted(c - o):
            errs.append(f"chart {what} grants {extra} which `rune operator rbac` does not")
        for missing in sorted(o - c):
            errs.append(f"chart {what} lacks {missing} which `rune operator rbac` needs")
    return errs


def check_crd(chart_docs, operator_docs):
    key = lambda d: d.get("metadata", {}).get("name")
    c = {key(d): d for d in chart_docs if d.get("kind") == "CustomResourceDefinition"}
    o = {key(d): d for d in operator_docs if d.get("kind") == "CustomResourceDefinition"}
    errs = []
    if not o:
        errs.append("`rune operator crd` printed no CustomResourceDefinition")
    for name in sorted(set(c) | set(o)):
        if name not in c:
            errs.append(f"CRD {name} from `rune operator crd` is missing in the chart's crds/")
        elif name not in o:
            errs.append(f"chart CRD {name} is not printed by `rune operator crd`")
        elif json.dumps(c[name], sort_keys=True) != json.dumps(o[name], sort_keys=True):
            errs.append(f"chart CRD {name} differs from `rune operator crd` (regenerate it)")
    return errs


def check_env(docs, deployment, help_text):
    errs = []
    dep = [d for d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] == deployment]
    if not dep:
        return [f"no Deployment {deployment} rendered"]
    for c in dep[0]["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env") or []:
            if f"[env: {e['name']}" not in help_text and e["name"] not in ("HOME", "TZ"):
                errs.append(f"{deployment}: env {e['name']} is not read by the command (not in its --help)")
        for a in c.get("args") or []:
            a = str(a)
            if a.startswith("--") and a.split("=")[0] + " " not in help_text:
                errs.append(f"{deployment}: flag {a} is not accepted by the command (not in its --help)")
    return errs


GOOD_POD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "ok"},
    "spec": {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "template": {
            "spec": {
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "c",
                        "env": [{"name": "RUNE_DATABASE_URL", "value": "sqlite:///data/jobs.db"}],
                        "volumeMounts": [{"name": "d", "mountPath": "/data"}],
                        "resources": {"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            }
        },
    },
}


def selftest():
    """Each mutation of a passing pod must be caught, naming the field."""
    import copy

    assert check_objects([GOOD_POD]) == [], check_objects([GOOD_POD])

    def mutated(fn):
        d = copy.deepcopy(GOOD_POD)
        fn(d)
        return d

    c = lambda d: d["spec"]["template"]["spec"]["containers"][0]
    cases = {
        "runAsNonRoot": lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
        "allowPrivilegeEscalation": lambda d: c(d)["securityContext"].pop("allowPrivilegeEscalation"),
        "readOnlyRootFilesystem": lambda d: c(d)["securityContext"].update(readOnlyRootFilesystem=False),
        "drop must contain ALL": lambda d: c(d)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        "seccompProfile": lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
        "resources.limits.memory": lambda d: c(d)["resources"]["limits"].pop("memory"),
        "exactly 1 replica": lambda d: d["spec"].update(replicas=2),
        "strategy Recreate": lambda d: d["spec"].update(strategy={"type": "RollingUpdate"}),
        "hostPath": lambda d: d["spec"]["template"]["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
        "must come from a Secret": lambda d: c(d)["env"].append({"name": "RUNE_API_TOKENS", "value": "t:x"}),
        "runAsUser must not be 0": lambda d: c(d)["securityContext"].update(runAsUser=0),
    }
    for needle, fn in cases.items():
        errs = check_objects([mutated(fn)])
        assert any(needle in e for e in errs), f"mutation `{needle}` not caught: {errs}"
    cm = {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"RUNE_DATABASE_URL": "postgres://u:p@h/d"}}
    assert any("holds a secret" in e for e in check_objects([cm]))
    route = {"kind": "HTTPRoute", "apiVersion": "gateway.networking.k8s.io/v1", "metadata": {"name": "r"},
             "spec": {"parentRefs": [{}], "rules": [{"backendRefs": [{"name": "s", "port": "80"}]}]}}
    errs = check_objects([route])
    assert any("parentRefs" in e for e in errs) and any("integer port" in e for e in errs), errs
    role = [{"kind": "ClusterRole", "rules": [{"apiGroups": ["rune.io"], "resources": ["runebenchmarks"], "verbs": ["get"]}]}]
    want = [[{"apiGroups": ["bench.rune.ai"], "resources": ["runebenchmarks"], "verbs": ["get"]}]]
    errs = check_rbac(role, want)
    assert any("nothing on bench.rune.ai" in e for e in errs) and any("lacks" in e for e in errs), errs
    same = [{"kind": "ClusterRole", "rules": want[0]}]
    assert check_rbac(same, want) == [], check_rbac(same, want)
    split = [[{"apiGroups": ["bench.rune.ai"], "resources": ["runebenchmarks"], "verbs": ["get", "list"]}]]
    assert any("lacks" in e for e in check_rbac(same, split))
    crd = {"kind": "CustomResourceDefinition", "metadata": {"name": "runebenchmarks.bench.rune.ai"}, "spec": {"a": 1}}
    assert check_crd([crd], [crd]) == []
    assert any("differs" in e for e in check_crd([crd], [dict(crd, spec={"a": 2})]))
    print("chart_check.py selftest: ok")
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "selftest":
        return selftest()
    if cmd == "pss":
        errs = []
        for path in argv[2:]:
            errs += [f"{path}: {e}" for e in check_objects(load(path))]
    elif cmd == "rbac":
        errs = check_rbac(load(argv[2]), load(argv[3]))
    elif cmd == "crd":
        import glob
        chart = [d for p in sorted(glob.glob(argv[2] + "/*.yaml")) for d in load(p)]
        errs = check_crd(chart, load(argv[3]))
    elif cmd == "env":
        with open(argv[4], encoding="utf-8") as f:
            errs = check_env(load(argv[2]), argv[3], f.read())
    else:
        print(f"unknown command {cmd}\n{__doc__}", file=sys.stderr)
        return 2
    for e in errs:
        print(f"FAIL {e}")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
