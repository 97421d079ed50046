"""The `trustmh` command line: it sits above every stage (suites, respond, judge, metrics, report)."""
