// ganfit's mesh viewer: three.js + GLTFLoader + OrbitControls, bundled by build.sh into ganfit-viewer.min.js
// (a classic script, so that report pages work from file://, where ES modules and fetch() are blocked).
//
// Markup: <div class="ganfit-viewer" data-glb-url="mesh.glb"> (fetched; http pages such as the demo) or
// <div class="ganfit-viewer" data-glb-script="index_files/x.glb.js" data-glb-id="x"> (a classic script that calls
// GanfitViewer.register(id, base64); file:// pages). The element gets data-viewer-state = loading | ready | error
// and, when ready, a canvas, a "light" toggle button and a "reset" button. Viewers are created when they scroll into
// view and disposed when far away (browsers cap the number of live WebGL contexts at ~16).
import {
  AmbientLight,
  Box3,
  Color,
  DirectionalLight,
  HemisphereLight,
  MeshBasicMaterial,
  PerspectiveCamera,
  Scene,
  SRGBColorSpace,
  Vector3,
  WebGLRenderer,
} from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";

const BACKGROUND = 0x2b2f36;
const registry = new Map(); // id -> base64 GLB (from data scripts)
const waiting = new Map(); // id -> [resolve]
const loadingScripts = new Set();

function register(id, base64) {
  registry.set(id, base64);
  for (const resolve of waiting.get(id) || []) resolve(base64);
  waiting.delete(id);
}

function base64ToBuffer(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function glbFromScript(src, id) {
  if (registry.has(id)) return Promise.resolve(base64ToBuffer(registry.get(id)));
  return new Promise((resolve, reject) => {
    if (!waiting.has(id)) waiting.set(id, []);
    waiting.get(id).push((b64) => resolve(base64ToBuffer(b64)));
    if (!loadingScripts.has(src)) {
      loadingScripts.add(src);
      const script = document.createElement("script");
      script.src = src;
      script.onerror = () => {
        loadingScripts.delete(src);
        reject(new Error("could not load " + src));
      };
      document.head.appendChild(script);
    }
  });
}

function glbOf(element) {
  if (element.dataset.glbUrl) {
    return fetch(element.dataset.glbUrl).then((r) => {
      if (!r.ok) throw new Error("HTTP " + r.status + " for " + element.dataset.glbUrl);
      return r.arrayBuffer();
    });
  }
  return glbFromScript(element.dataset.glbScript, element.dataset.glbId);
}

class Viewer {
  constructor(element, buffer) {
    this.element = element;
    const width = Math.max(1, element.clientWidth);
    const height = Math.max(1, element.clientHeight);
    this.renderer = new WebGLRenderer({ antialias: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setSize(width, height);
    this.renderer.outputColorSpace = SRGBColorSpace;
    this.renderer.setClearColor(new Color(BACKGROUND), 1);
    this.scene = new Scene();
    this.camera = new PerspectiveCamera(30, width / height, 1, 10000);
    this.hemi = new HemisphereLight(0xffffff, 0x404040, 1.2);
    this.ambient = new AmbientLight(0xffffff, 0.4);
    this.key = new DirectionalLight(0xffffff, 2.0); // a head light: it follows the camera
    this.scene.add(this.hemi, this.ambient, this.key, this.camera);
    this.camera.add(this.key);
    this.key.position.set(0.3, 0.4, 1);
    this.lit = true;
    this.litMaterials = [];
    this.flatMaterials = [];
    element.appendChild(this.renderer.domElement);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener("change", () => this.render());
    this.addButtons();
    new GLTFLoader().parse(
      buffer,
      "",
      (gltf) => this.show(gltf.scene),
      (error) => this.fail(error),
    );
  }

  addButtons() {
    const bar = document.createElement("div");
    bar.className = "ganfit-viewer-bar";
    const light = document.createElement("button");
    light.type = "button";
    light.className = "ganfit-light";
    light.textContent = "light: on";
    light.title = "toggle between shaded (lights on) and the texture alone (albedo)";
    light.onclick = () => {
      this.setLit(!this.lit);
      light.textContent = this.lit ? "light: on" : "light: off";
    };
    const reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "reset view";
    reset.onclick = () => this.frame();
    bar.append(light, reset);
    this.element.appendChild(bar);
  }

  show(root) {
    this.root = root;
    root.traverse((node) => {
      if (!node.isMesh) return;
      const material = node.material;
      material.side = 2; // DoubleSide: the face area is an open surface
      if (!node.geometry.attributes.normal) {
        // ganfit's GLBs carry no normals; GLTFLoader would then shade flat
        node.geometry.computeVertexNormals();
        material.flatShading = false;
      }
      // The texture is the albedo: a dark baseColorFactor (trimesh writes 0.4) or glTF's default metallic = 1
      // would show it darkened or as metal under these lights.
      if (material.map && material.color) material.color.setRGB(1, 1, 1);
      if ("metalness" in material) material.metalness = 0;
      if ("roughness" in material) material.roughness = Math.max(material.roughness, 0.7);
      material.needsUpdate = true;
      this.litMaterials.push([node, material]);
      const flat = new MeshBasicMaterial({ map: material.map, color: material.map ? 0xffffff : material.color });
      flat.side = 2;
      this.flatMaterials.push([node, flat]);
    });
    this.scene.add(root);
    this.frame();
    this.element.dataset.viewerState = "ready";
    this.element.dispatchEvent(new CustomEvent("ganfit-viewer-ready", { bubbles: true }));
  }

  frame() {
    const box = new Box3().setFromObject(this.root);
    const center = box.getCenter(new Vector3());
    const size = box.getSize(new Vector3());
    const radius = 0.5 * size.length();
    const distance = radius / Math.sin((this.camera.fov * Math.PI) / 360);
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.position.set(center.x, center.y, center.z + distance); // the ICT model faces +Z
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(center);
    this.controls.minDistance = radius * 0.3;
    this.controls.maxDistance = distance * 4;
    this.controls.update();
    this.render();
  }

  setLit(lit) {
    this.lit = lit;
    for (const [node, material] of lit ? this.litMaterials : this.flatMaterials) node.material = material;
    this.render();
  }

  render() {
    this.renderer.render(this.scene, this.camera);
  }

  fail(error) {
    this.element.dataset.viewerState = "error";
    const note = document.createElement("p");
    note.className = "ganfit-viewer-error";
    note.textContent = "3D view failed: " + (error && error.message ? error.message : error);
    this.element.appendChild(note);
  }

  dispose() {
    this.controls.dispose();
    this.renderer.dispose();
    this.renderer.forceContextLoss();
    this.element.innerHTML = "";
    delete this.element.dataset.viewerState;
  }
}

const live = new Map(); // element -> Viewer

function mount(element) {
  if (live.has(element) || element.dataset.viewerState === "loading") return;
  element.dataset.viewerState = "loading";
  glbOf(element)
    .then((buffer) => {
      if (element.dataset.viewerState !== "loading") return; // scrolled away meanwhile
      live.set(element, new Viewer(element, buffer));
    })
    .catch((error) => {
      element.dataset.viewerState = "error";
      element.textContent = "3D view failed: " + error.message;
    });
}

function unmount(element) {
  const viewer = live.get(element);
  if (viewer) viewer.dispose();
  live.delete(element);
  if (element.dataset.viewerState === "loading") delete element.dataset.viewerState;
}

function watch(root) {
  const elements = (root || document).querySelectorAll(".ganfit-viewer");
  if (!("IntersectionObserver" in window)) {
    elements.forEach(mount);
    return;
  }
  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) (entry.isIntersecting ? mount : unmount)(entry.target);
    },
    { rootMargin: "400px 0px" },
  );
  elements.forEach((element) => observer.observe(element));
}

window.GanfitViewer = { register, mount, unmount, watch, BACKGROUND };
