"""The domain: what a data set is (its contract) and what "valid" means for it. Imports no engine and no
Faker; generation, quality, cleaning, loading and the pages depend on it, never the other way."""
