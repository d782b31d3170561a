# The two commands: `make run` (set up and run the platform with a simulated fleet) and
# `make test` (set up and run the whole test suite). `make stop` ends what `make run` started.
DEVICES ?= 100
GRIDTWIN = .venv/bin/gridtwin

.PHONY: run stop test bench status bootstrap

bootstrap:
	./scripts/bootstrap.sh

run: bootstrap
	$(GRIDTWIN) up --devices $(DEVICES)

stop:
	$(GRIDTWIN) down

status:
	$(GRIDTWIN) status

test: bootstrap
	$(GRIDTWIN) proto check
	.venv/bin/ruff check .
	.venv/bin/mypy gridtwin services actors simulator bench edge
	.venv/bin/pytest -q -p no:cacheprovider

bench: bootstrap
	.venv/bin/python -m bench.telemetry
