# Two commands on a fresh machine: `make demo` and `make test` (each installs first; see README).
PYTHON_VENV := .venv/bin/python

.PHONY: setup demo test

setup:
	bash tools/setup_env.sh

# $(1): method folder under configs/; trains, tests and draws predictions in work_dirs/<config>.
define train_and_test
	$(PYTHON_VENV) tools/train.py configs/$(1)/$(1)_vit-tiny_synthetic-abdomen.py \
		--work-dir work_dirs/$(1)_vit-tiny_synthetic-abdomen
	$(PYTHON_VENV) tools/test.py configs/$(1)/$(1)_vit-tiny_synthetic-abdomen.py \
		"$$(cat work_dirs/$(1)_vit-tiny_synthetic-abdomen/last_checkpoint)" \
		--work-dir work_dirs/$(1)_vit-tiny_synthetic-abdomen \
		--show-dir work_dirs/$(1)_vit-tiny_synthetic-abdomen/vis
endef

# The embedded-default main job: H-SAM and SAMed, same tiny ViT, data, iterations and seed,
# on the synthetic abdomen; their per-organ Dice/HD95 side by side at the end.
demo: setup
	$(call train_and_test,hsam)
	$(call train_and_test,samed)
	$(PYTHON_VENV) tools/analysis_tools/compare_results.py \
		work_dirs/hsam_vit-tiny_synthetic-abdomen work_dirs/samed_vit-tiny_synthetic-abdomen

test: setup
	$(PYTHON_VENV) -m pytest tests
