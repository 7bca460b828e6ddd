"""The Azure Functions app (Python v2 programming model) that cleans small batches on the azure cloud.

The Functions host loads this file from the root of the deployed app; each concern registers its functions
from a module of its own under orchestrator/clouds/azure/functions/. The app reads the same settings as the
workbench (its application settings are the environment), so its drain finds the same queues, lake and job
store. Deployment: docs/azure-functions.md.
"""

import azure.functions as func

from orchestrator.clouds.azure.functions import health, small_batches

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(small_batches.bp)
app.register_functions(health.bp)
