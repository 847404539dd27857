// Run by test/backend.test.ts in a child process: importing loss-balancer changes nothing in tfjs,
// and initBackend() keeps a backend the program already chose.
import * as tf from '@tensorflow/tfjs';

const registered = () => Object.keys(tf.engine().registryFactory).sort().join(',');
const out: Record<string, unknown> = {};
out.before = registered();
const lb = await import('../../src/index.js');
await import('../../src/browser.js');
out.after = registered();
out.topLevelSum = tf.tensor1d([1, 2, 3]).sum().dataSync()[0]; // a top-level sync op after the import
out.implicit = tf.getBackend();
await tf.setBackend('cpu');
out.kept = await lb.initBackend();
out.keptActive = tf.getBackend();
out.chosen = await lb.initBackend('auto');
out.chosenActive = tf.getBackend();
console.log(JSON.stringify(out));
