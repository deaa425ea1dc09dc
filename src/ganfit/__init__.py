"""ganfit: GANFIT (Gecer et al., CVPR 2019) — single-photo 3D face reconstruction by fitting a texture GAN.

Sub-packages: ``face_model`` (ICT FaceKit morphable model), ``render`` (differentiable rasterizer with
nvdiffrast's API), ``identity`` (pretrained face-recognition networks), ``landmarks`` (face detection and
68-point landmarks), ``gan`` (progressive texture GAN), ``fitting`` (stage 2), ``image_io`` (robust photo input).
"""

__version__ = "0.1.0"
