// The player views by the name a test type gives its pages (TestType.view): a new type reuses one of these or
// adds its module here. `triple` (BS.1116) is the sliders view on the page's own scale, with A and B.

import { PickView } from "./pick.js";
import { SlidersView } from "./sliders.js";

/** @type {Object<string, typeof import("./trial.js").StimulusView>} */
export const VIEWS = { sliders: SlidersView, triple: SlidersView, pick: PickView };
