"""`trustmh respond`: the chatbots under test (targets) answer benchmark prompts, through the same engine
as judge calls (cache, limits, retries, journal and resume)."""
