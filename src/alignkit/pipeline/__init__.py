"""Pipelines: several stages (lab data, training runs, an evaluation) run in order from one file.

``alignkit run PIPELINE.yaml`` resolves the file (:mod:`alignkit.pipeline.spec`),
validates every stage before any runs, then runs, resumes or skips each one
(:mod:`alignkit.pipeline.runner`), keeping its progress in ``pipeline.json``
(:mod:`alignkit.pipeline.state`). ``alignkit demo`` runs the pipeline shipped
in ``demo.yaml``. The eval stage (:mod:`alignkit.pipeline.eval_stage`) and the
HTML report (:mod:`alignkit.pipeline.report`) live here too.
"""
