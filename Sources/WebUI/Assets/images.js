// Images picked, dropped or pasted: read, downscaled in the browser when larger than the server's budget
// (keeping enough pixels for small text), and turned into data URLs for upload.

/** Pixel budget when the server does not say (about 1600×1600; text stays legible). */
export const DEFAULT_MAX_PIXELS = 2_560_000;
/** Longest side kept, whatever the budget. */
export const MAX_SIDE = 3072;
/** Largest file read at all. */
export const MAX_FILE_BYTES = 40 * 1024 * 1024;

/**
 * Reads `file` into `{name, dataURL, width, height, bytes, downscaled}`. Throws Error('not-image' | 'too-big').
 * Images within `maxPixels` and MAX_SIDE are sent as they are (no re-encoding loss).
 */
export async function prepareImage(file, maxPixels = DEFAULT_MAX_PIXELS) {
  if (!file.type.startsWith('image/')) throw new Error('not-image');
  if (file.size > MAX_FILE_BYTES) throw new Error('too-big');
  const original = await readAsDataURL(file);
  const img = await loadImage(original);
  const width = img.naturalWidth, height = img.naturalHeight;
  const supported = /^image\/(png|jpeg|webp|gif)$/.test(file.type);
  const scale = Math.min(1, Math.sqrt(maxPixels / (width * height)), MAX_SIDE / Math.max(width, height));
  if (scale >= 1 && supported) {
    return { name: file.name || 'image', dataURL: original, width, height, bytes: file.size, downscaled: false };
  }
  const w = Math.max(1, Math.round(width * Math.min(scale, 1)));
  const h = Math.max(1, Math.round(height * Math.min(scale, 1)));
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  // Transparent PNGs keep their look on a white background (the model sees no alpha).
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(img, 0, 0, w, h);
  // Screenshots (PNG) stay lossless so small text survives; photos go to high-quality JPEG.
  const type = file.type === 'image/png' || file.type === 'image/gif' ? 'image/png' : 'image/jpeg';
  const dataURL = canvas.toDataURL(type, 0.92);
  return { name: file.name || 'image', dataURL, width: w, height: h, bytes: Math.round((dataURL.length - dataURL.indexOf(',') - 1) * 0.75), downscaled: scale < 1 };
}

export function readAsDataURL(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('not-image'));
    img.src = src;
  });
}

/** Image files from a DataTransfer (drop or paste). */
export function imageFilesFrom(dataTransfer) {
  const files = [];
  if (!dataTransfer) return files;
  if (dataTransfer.files && dataTransfer.files.length) {
    for (const file of dataTransfer.files) if (file.type.startsWith('image/')) files.push(file);
  } else if (dataTransfer.items) {
    for (const item of dataTransfer.items) {
      if (item.kind === 'file' && item.type.startsWith('image/')) {
        const file = item.getAsFile();
        if (file) files.push(file);
      }
    }
  }
  return files;
}
