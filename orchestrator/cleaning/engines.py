"""The cleaning engines by name, as jobs record them and people choose them: pandas in this process (the
small path) and Spark (the large one, run where the settings say); ``auto`` picks by the batch's route."""

from __future__ import annotations

PANDAS = "pandas"
SPARK = "spark"
AUTO = "auto"
ENGINES = (PANDAS, SPARK)
CHOICES = (AUTO, *ENGINES)
LABELS = {AUTO: "auto", PANDAS: "pandas", SPARK: "Spark"}  # as the pages name them
