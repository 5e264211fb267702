.PHONY: demo test lint
# The two README commands. Each bootstraps what it needs (system packages as root, .venv).

demo:
	scripts/bootstrap.sh demo
	.venv/bin/potr demo $(ARGS)

test:
	scripts/test.sh $(ARGS)
