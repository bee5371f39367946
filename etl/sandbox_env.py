"""Imported first by the import sandbox's forkserver: its GDAL settings, before any driver loads.

Never imported by the API process (that would switch GDAL's VRT driver off there too).
"""

import os

from etl.sandbox import CHILD_ENV

os.environ.update(CHILD_ENV)
