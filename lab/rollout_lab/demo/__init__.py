"""`rollout demo`: the whole product on the embedded sandbox, in under three minutes."""
