module guardrail.dev/bench/loadgen

go 1.22
