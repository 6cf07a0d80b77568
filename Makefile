# Two commands on a fresh machine: `make demo` and `make test` (each installs first; see README).
PYTHON_VENV := .venv/bin/python
ABDOMEN_DEMOS := configs/hsam/hsam_vit-tiny_synthetic-abdomen.py \
	configs/samed/samed_vit-tiny_synthetic-abdomen.py \
	configs/masksam/masksam_vit-tiny_synthetic-abdomen-3d.py
LESION_DEMOS := configs/sam_mcl/sam-mcl_vit-tiny_synthetic-lesion.py \
	configs/seqsam/seqsam_vit-tiny_synthetic-lesion.py configs/psam/psam_vit-tiny_synthetic-lesion.py
# configs/<method>/results/<config name>.json: the seed-sweep summary of a demo config.
reference = $(dir $(1))results/$(basename $(notdir $(1))).json
ABDOMEN_REFERENCES := $(foreach c,$(ABDOMEN_DEMOS),$(call reference,$(c)))
LESION_REFERENCES := $(call reference,configs/medsam/medsam_vit-tiny_synthetic-lesion.py) \
	$(foreach c,$(LESION_DEMOS),$(call reference,$(c)))

.PHONY: setup demo demo-lesions demo-seeds test test-fast

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

# The embedded-default main job on the synthetic abdomen: H-SAM and SAMed (2D slices, same
# tiny ViT, data, iterations and seed) and MaskSAM (3D patches, tested by sliding window on the
# same test volumes); their per-organ Dice/HD95 side by side at the end.
# One thread, as the reference runs (configs/<method>/results/, `make demo-seeds`): in brackets
# after each number the reference's mean +- std over seeds 0, 1, 2.
demo: export OMP_NUM_THREADS = 1
demo: setup
	$(call train_and_test,hsam)
	$(call train_and_test,samed)
	$(call train_and_test_config,configs/masksam/masksam_vit-tiny_synthetic-abdomen-3d.py)
	$(PYTHON_VENV) tools/analysis_tools/compare_results.py \
		work_dirs/hsam_vit-tiny_synthetic-abdomen work_dirs/samed_vit-tiny_synthetic-abdomen \
		work_dirs/masksam_vit-tiny_synthetic-abdomen-3d --reference $(ABDOMEN_REFERENCES)

# $(1): config path; trains and tests it in work_dirs/<config name>, drawing test pictures.
define train_and_test_config
	$(PYTHON_VENV) tools/train.py $(1) --work-dir work_dirs/$(basename $(notdir $(1)))
	$(PYTHON_VENV) tools/test.py $(1) \
		"$$(cat work_dirs/$(basename $(notdir $(1)))/last_checkpoint)" \
		--work-dir work_dirs/$(basename $(notdir $(1))) \
		--show-dir work_dirs/$(basename $(notdir $(1)))/vis
endef

# Ambiguous segmentation on the synthetic lesions (4 disagreeing readers): the tiny MedSAM
# trained from scratch (the deterministic baseline and, exported in SAM's layout, the weights
# the others fine-tune with a frozen encoder), then SAM MCL, SeqSAM and pSAM; GED/D_avg side
# by side, each next to the reference's mean +- std over seeds 0, 1, 2 (`make demo-seeds`).
# One thread, as the references: the thread count then does not change the summation order,
# but another CPU's float kernels still can, so a run is compared with the seeds' spread.
demo-lesions: export OMP_NUM_THREADS = 1
demo-lesions: setup
	$(call train_and_test_config,configs/medsam/medsam_vit-tiny_synthetic-lesion.py)
	$(PYTHON_VENV) tools/model_converters/mmsam2sam.py --overwrite \
		"$$(cat work_dirs/medsam_vit-tiny_synthetic-lesion/last_checkpoint)" \
		checkpoints/tiny-medsam_synthetic-lesion.pth
	$(call train_and_test_config,configs/sam_mcl/sam-mcl_vit-tiny_synthetic-lesion.py)
	$(call train_and_test_config,configs/seqsam/seqsam_vit-tiny_synthetic-lesion.py)
	$(call train_and_test_config,configs/psam/psam_vit-tiny_synthetic-lesion.py)
	$(PYTHON_VENV) tools/analysis_tools/compare_results.py work_dirs/medsam_vit-tiny_synthetic-lesion \
		work_dirs/sam-mcl_vit-tiny_synthetic-lesion work_dirs/seqsam_vit-tiny_synthetic-lesion \
		work_dirs/psam_vit-tiny_synthetic-lesion --reference $(LESION_REFERENCES)

# The READMEs' synthetic tables: every demo config trained and tested over seeds 0, 1, 2 with one
# thread (work_dirs/seeds/<config>/seed<N>), summarised in configs/<method>/results/<config>.json.
# The lesion methods fine-tune the seed-0 MedSAM. `make -j2 demo-seeds` runs two at a time.
demo-seeds: export OMP_NUM_THREADS = 1
demo-seeds: setup $(ABDOMEN_REFERENCES) $(LESION_REFERENCES)

configs/%.json: setup
	$(PYTHON_VENV) tools/analysis_tools/seed_sweep.py \
		$(subst /results/,/,$(basename $@)).py --resume-seeds --out $@

$(foreach c,$(LESION_DEMOS),$(call reference,$(c))): checkpoints/tiny-medsam_synthetic-lesion.pth

checkpoints/tiny-medsam_synthetic-lesion.pth: $(call reference,configs/medsam/medsam_vit-tiny_synthetic-lesion.py)
	$(PYTHON_VENV) tools/model_converters/mmsam2sam.py --overwrite \
		"$$(cat work_dirs/seeds/medsam_vit-tiny_synthetic-lesion/seed0/last_checkpoint)" $@

# Two worker processes, one torch thread each (tests/conftest.py): most tests use one core.
PYTEST_WORKERS ?= 2
test: setup
	$(PYTHON_VENV) -m pytest tests -n $(PYTEST_WORKERS) --dist loadfile

# Everything but the end-to-end tests marked slow (see pytest.ini), for quick iterations.
test-fast: setup
	$(PYTHON_VENV) -m pytest tests -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile
