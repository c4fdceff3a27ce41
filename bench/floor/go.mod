module guardrail.dev/bench/floor

go 1.22
