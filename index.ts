// The stack program run by `pulumi up` / `pulumi preview`: see components/pulumi/program.ts.
import { main } from "./components/pulumi/program";

export = main();
