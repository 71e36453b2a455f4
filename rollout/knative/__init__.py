"""What we know about Knative Serving objects: traffic rules, status readers, metric dialects."""
