// demo.mjs - what the bundled demo model (models/demo/) can answer, so the
// page can say it: coloured shapes on a light background, five kinds of
// question (weights_tool/train_demo/shapes.py). For anything else — a photo, a
// blank canvas, text, a dark background — it was trained to say "I can only see
// coloured shapes." (models/demo/MODEL_CARD.md: 299 of 300 held-out such pictures).

/** The demo model's manifest id. */
export const DEMO_ID = 'owlet-demo';

/** One question of each kind the demo model was trained on. */
export const DEMO_QUESTIONS = ['What shape is this?', 'What colour is the shape?', 'How many shapes are there?',
  'Where is the shape?', 'Describe the image.'];

/** Example questions for any other model. */
export const GENERAL_QUESTIONS = ['What is in this picture?', 'Describe the image.', 'What colours do you see?'];

/** Whether a manifest (or its URL, before it is read) is the demo model's. */
export function isDemo(manifest, url = '') {
  if (manifest) return manifest.id === DEMO_ID;
  return /(^|\/)models\/demo\/manifest\.json$/.test(url);
}

/** The warning for a picture that is not drawn on the pad, while the demo model is selected. */
export function photoWarning(how) {
  return `The picture from ${how} was not drawn on the pad. The demo model knows only coloured shapes on a light ` +
    'background: if this is a photo or any other kind of picture, it will answer “I can only see coloured shapes.” ' +
    '(or, now and then, something that is not about the picture).';
}
