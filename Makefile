# gradesync — two commands: `make demo` and `make test` (both install on first use).
PY_BOOT ?= python3
TOOLS   := .tools
UV      := $(TOOLS)/bin/uv
VENV    := .venv
STAMP   := $(VENV)/.installed

.PHONY: install demo test bench clean

# .venv is rebuilt whenever the lock file or pyproject changes (stale), or is missing.
$(UV):
	$(PY_BOOT) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/gradesync demo

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: install
	@$(VENV)/bin/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

bench: install
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
