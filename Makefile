# Two commands on a fresh machine: `make demo` and `make test` (each installs first; see README).
PYTHON_VENV := .venv/bin/python
DEMO_CONFIG := configs/samed/samed_vit-tiny_synthetic-abdomen.py
DEMO_WORK_DIR := work_dirs/samed_vit-tiny_synthetic-abdomen

.PHONY: setup demo test

setup:
	bash tools/setup_env.sh

demo: setup
	$(PYTHON_VENV) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK_DIR)
	$(PYTHON_VENV) tools/test.py $(DEMO_CONFIG) "$$(cat $(DEMO_WORK_DIR)/last_checkpoint)" \
		--work-dir $(DEMO_WORK_DIR) --show-dir $(DEMO_WORK_DIR)/vis

test: setup
	$(PYTHON_VENV) -m pytest tests
