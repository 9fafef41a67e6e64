import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hypothesis import settings  # noqa: E402

from toylab import _compile_cache  # noqa: E402

# JAX's persistent compilation cache (the user's cache directory, or $TOYLAB_CACHE_DIR):
# programs compiled by one test run are loaded by the next. Safe to delete.
_compile_cache.enable()

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
