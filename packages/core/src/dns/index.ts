export {
  DnsClass,
  DnsOpcode,
  DnsRcode,
  DnsType,
  decodeDnsMessage,
  encodeDnsMessage,
  type DnsMessage,
  type DnsQuestion,
  type DnsRdata,
  type DnsResourceRecord,
} from './message.js';
export { parseTsigKeyFile, signDnsMessage, verifyDnsReply, type TsigKey } from './tsig.js';
export {
  DEFAULT_DNS_TIMEOUT_MS,
  queryAddresses,
  querySrv,
  sendUpdate,
  type DnsQueryOptions,
  type DnsRecord,
  type DnsServer,
  type DnsUpdate,
  type DnsUpdateOptions,
  type DnsUpdateType,
  type SrvRecord,
} from './client.js';
