"""``python -m ganfit.demo``: a local web page (127.0.0.1) that fits an uploaded photo or the bundled example with
the real fit job, shows the overlay, the textures and a turnable 3D mesh, and offers the results as a zip.

Standard library only (``http.server``): the fit is the heavy part, a web framework would add nothing but
dependencies (Gradio pins numpy/protobuf ranges that fight mediapipe's numpy<2 / protobuf<5). One worker thread
fits one photo at a time; further uploads wait in the queue.
"""

from ganfit.demo.jobs import FitQueue, Job, JobError
from ganfit.demo.server import DemoServer

__all__ = ["DemoServer", "FitQueue", "Job", "JobError"]
