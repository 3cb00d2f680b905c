// The player views by the name a test type gives its pages (TestType.view): a new type reuses one of these or
// adds its module here.

import { PickView } from "./pick.js";
import { SlidersView } from "./sliders.js";

/** @type {Object<string, typeof import("./trial.js").StimulusView>} */
export const VIEWS = { sliders: SlidersView, pick: PickView };
