.PHONY: demo test
# Shortcuts for the two README commands (which need no make on a fresh machine).

demo:
	scripts/demo.sh $(ARGS)

test:
	scripts/test.sh $(ARGS)
