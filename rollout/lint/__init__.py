"""`rollout lint`: the check a GitOps repository runs before merge.

Modules: yamlload (hostile-input-safe YAML with line numbers), discover (which files), manifests (objects
and metadata rules), policy_rules and promql (RolloutPolicy semantics), knative_rules and annotation_rules
(Knative Service/Route/Configuration), crossrefs (rules across files), linter (the engine), report (text
and JSON output; the JSON schema is documented there).
"""
