"""The large-batch cleaning engine in PySpark: raw JSON lines in, silver, quarantine and gold Parquet out,
with the same rules and results as the small path (orchestrator.cleaning.engine), in the same passes.

session: the Spark session; read: the raw job and pass 1, column cleaning; repairs: pass 2, repairs across
tables; settle: passes 3 and 4, quarantine, references and de-duplication; publish: the output files; job:
``clean_job``, a whole job in order, its gold built from the published silver as the small path builds it.
notebooks/clean_large_batch.py runs it on a cluster or a local session.
"""
