"""TrustMH-Bench suites: registered datasets turned into prompts, and run directories turned into the
paper's numbers (scorecard). One module per pillar holds its builders and metric rules; `catalogue`
lists every sub-task of the paper in one table."""
