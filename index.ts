// The stack program run by `pulumi up` / `pulumi preview`: see components/program.ts.
import { main } from "./components/program";

export = main();
