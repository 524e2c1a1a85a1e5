// Field photos: read the picked file as a data URL and downscale it to a JPEG no larger than
// 1600 px on its long side before upload (phones take 12-megapixel pictures; the hub needs less).

export const MAX_SIDE = 1600;
const QUALITY = 0.85;

/** The size to draw an image at so that neither side exceeds `max` (never enlarged). */
export function fitWithin(width, height, max = MAX_SIDE) {
  const scale = Math.min(1, max / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error || new Error("cannot read the file"));
    reader.readAsDataURL(file);
  });
}

function decode(dataUrl) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("not an image this browser can read"));
    img.src = dataUrl;
  });
}

/** A picked image file as a JPEG data URL, at most `max` px on its long side. */
export async function downscalePhoto(file, max = MAX_SIDE) {
  const img = await decode(await readAsDataURL(file));
  const { width, height } = fitWithin(img.naturalWidth, img.naturalHeight, max);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // transparent PNG areas would turn black in JPEG
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(img, 0, 0, width, height);
  return { dataUrl: canvas.toDataURL("image/jpeg", QUALITY), width, height };
}
