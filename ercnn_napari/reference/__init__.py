"""Reference imagery for labelling: orthophotos or map services cached inside a project.

A room of its own (Qt-free, TensorFlow-free): :mod:`.source` opens what the analyst names
(a local raster in any CRS, or a GDAL WMS/WMTS/TMS description) and reads it on the project grid;
:mod:`.cache` writes the resumable COG cache and the authors' per-tile PNGs; :mod:`.store` tells
the viewer which cached images a project has. It imports only ``core``.
"""
