"""The core of Image Studio: everything that is neither a page nor a provider.

Packages: ``jobs`` (the runner and the life of one job), ``history`` (what pages read and
edit), ``spend`` (money, budget, costs), ``images`` (preparing inputs, recipes, masks),
``exports`` (downloads, reports, contact sheets, code), ``prompts`` (templates and the
Studio form as data), ``compare`` (experiments). ``services`` wires one process.
"""
