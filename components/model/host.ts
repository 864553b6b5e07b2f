/** How hosts are named. */

/** The name a host goes by in resource names and output: its `name`, else its address. */
export function hostName(host: { readonly name?: string | undefined; readonly address: string }): string {
    return host.name ?? host.address;
}
