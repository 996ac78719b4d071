"""The Slack edge: the only package that imports Bolt or speaks Block Kit."""
