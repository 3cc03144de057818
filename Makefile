.PHONY: run test
run:
	scripts/serve
test:
	scripts/test
