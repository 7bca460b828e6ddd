"""The Azure Functions app of the azure cloud (Python v2 programming model): one module per concern, each a
Blueprint that function_app.py at the repository's root registers.

- small_batches.py: the small path. A timer trigger every ten minutes and an HTTP trigger (called by Data
  Factory's ``small_batch`` pipeline and by the workbench's Clean now) drain the small queue with the worker's
  own ``drain`` (orchestrator.worker), so a small batch is cleaned exactly as the worker would clean it.
- health.py: whether the function app reaches its small queue, for a deployment's first check.

client.py is the workbench's side: ``invoke`` calls the HTTP trigger (orchestrator.clouds.SMALL_RUNNERS).
"""
