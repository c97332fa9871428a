"""mlkd-ser: multi-level knowledge distillation for speech emotion recognition in noise.

Where each thing lives (``module:function``; every subpackage's ``__init__`` imports nothing, so
torch-free paths such as ``mlkd predict`` on an ONNX model stay torch-free):

The vocabulary and the places
    names                        label codes, the clean condition, model names
    arms:ARMS                    the student arms, one record each (loss, start, keys, contrasts, colour)
    config:StudyConfig           every key of a study, typed and documented; config:PRESETS
    layout:StudyLayout           every path of a study folder, and its done.json markers
    paths:resolve                relative paths are taken against the project root
    device:pick_device           device, threads, autocast, loader workers
    cli:main                     the ``mlkd`` command

Data (``data/``)
    data.recipes.<corpus>:build_manifest  a corpus as distributed -> manifest (cremad, ravdess, emodb,
                                          msppodcast; iemocap:build_manifest, exc merged into hap)
    data.user_manifest:manifest_problems  a researcher's own manifest, checked whole; complete_manifest
    data.prepare:study_manifest           the study's utterances: label_map merged, the emotions kept
    data.synthetic:make_synthetic_corpus  the demo's espeak-ng corpus
    data.ingest:ingest                    a corpus at any rate and channel count, brought to 16 kHz mono once
    data.noise.bank:write_noise_bank      any noise collection, NOISEX-92 or synthetic; data.noise.bank:split_noise
    data.conditions.families:registry     the test condition families, one module each (reverb, codec, ...)
    data.mixing:mix_at_snr                noise scaled to an SNR against the P.56 speech level
    data.folds:make_folds                 leave-one-speaker-out, speaker-independent k-fold, the corpus's split
    data.dataset:NoisyPairDataset         clean and noisy versions of each utterance
    data.batches:EpochBatches             training batches of similar lengths, drawn anew each epoch
    data.prepare:load_fold                a fold's utterances and noise, as every step reads them

The method (``method/``)
    method.models:build_student           the 6-layer student from the teacher's even layers
    method.losses:mlkd_objective          L = α(L_KD + β·L_ML) + (1 − α)L_CE
    method.roles:Role                     what each role trains: model, input, epochs, loss
    method.train:train                    the training loop of every role, resumable
    method.step_bench:measured_steps      training steps timed through the real loader (bench, --plan)
    method.teacher_cache:TeacherTargets   the teacher's targets, cached or live
    method.evaluate:evaluate_conditions   every model under every test condition
    method.baseline:VadNmfEnhancer        the VAD + NMF baseline's front-end
    method.pretrain:pretrain              the demo encoder's pretraining

The study (``study/``)
    study.notebook:open_step              what the notebooks call
    study.runner:run_study                ``mlkd study``: plan, run, run.json; study.runner:run_ablations
    study.steps:execute                   the local executor; study.executors:open_executor (local or Ray)
    study.kernels:KernelPool              warm notebook kernels: the local executor's steps skip start-up
    study.preflight:preflight             every problem with the inputs, before anything starts
    study.plan:make_plan                  ``--plan``: disk and device hours from measured steps
    study.sweep:run_sweep                 ``mlkd sweep``: a grid of student settings, every point an ablation
    study.report:open_analysis            what 04 calls

Results (``analysis/``)
    analysis.tables:table1, table2, table3   the paper's tables
    analysis.stats:paired_differences        paired CIs and tests over folds
    analysis.corruption:table4               beyond the training noise: UA per family, CE and mCE
    analysis.calibration:calibration_table   ECE, NLL, Brier, risk–coverage; the temperature fit; Table 5
    analysis.grid:grid_summary               a grid chosen on validation, reported on test
    analysis.frontier:frontier_contrasts     the depth frontier
    analysis.plots                           the figures

Listening (``explore/``)
    explore.explorer:Explorer             the study explorer (05, ``mlkd listen``); explore.players

The model outside the study (``deploy/``)
    deploy.export:export_from_study       ONNX fp32 / int8
    deploy.predict:predict_files          ``mlkd predict`` (torch-free from ONNX)
    deploy.table3:score_study             Table 3 as deployed; deploy.scoring (export, time, score ONNX)
    deploy.bench:bench                    ``mlkd bench``: inference and distillation-step timing

Our reading of the paper, and every choice it leaves open with the key that sets it: ``docs/design.md``.
"""
